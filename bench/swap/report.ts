// The JSON-line protocol of app.ts, for the bench's own TypeScript children (the livemod ones):
// values with the monotonic clock, and the heap after full collections when asked on stdin.

const gc = (globalThis as { gc?: () => void }).gc;

export function send(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

export function reportValue(value: number): void {
  send({ event: 'value', value, t: String(process.hrtime.bigint()) });
}

/** The main isolate's heap after ten full collections, each followed by a task so finalizers run. */
export async function settledHeap(): Promise<{ bytes: number; rss: number }> {
  if (!gc) throw new Error('run with --expose-gc');
  for (let round = 0; round < 10; round += 1) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const usage = process.memoryUsage();
  return { bytes: usage.heapUsed, rss: usage.rss };
}

/** Answers each "heap" line on stdin; `extra` adds fields to the answer (taken after the collections). */
export function answerHeap(extra: () => Record<string, unknown> = () => ({})): void {
  process.stdin.setEncoding('utf8');
  let input = '';
  process.stdin.on('data', (chunk: string) => {
    input += chunk;
    let end: number;
    while ((end = input.indexOf('\n')) !== -1) {
      const command = input.slice(0, end);
      input = input.slice(end + 1);
      if (command === 'heap') void settledHeap().then((heap) => send({ event: 'heap', ...heap, ...extra() }));
    }
  });
}
