// A live binding: importers see `counter` change when this module reassigns it.
export let counter = 0;

export function tick(): void {
  counter += 1;
}
