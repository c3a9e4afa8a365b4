// A monotonic clock in milliseconds, for durations and deadlines. performance.now() would do, but
// the first touch of the `performance` global loads perf_hooks and ten internal modules with it
// (~0.5 ms of every start, measured with process.moduleLoadList); process.hrtime loads nothing.
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
