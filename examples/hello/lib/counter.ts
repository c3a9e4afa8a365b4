// A live binding: importers see `count` change when this module reassigns it. Its value is kept
// in `import.meta.hot.data`, so an edit of this very file carries the count over too.
const state = (import.meta.hot?.data.state ?? { count: 0 }) as { count: number };
if (import.meta.hot) import.meta.hot.data.state = state;

export let count = state.count;

export function tick(): void {
  state.count += 1;
  count = state.count;
}

import.meta.hot?.accept();
