/** Exponential back-off with jitter: attempt 1 waits ~initial, then doubles up to max. */
export function restartDelay(attempt: number, initialMs: number, maxMs: number): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
  // Jitter keeps several failing jobs from hammering a recovering service in lockstep.
  return Math.round(base * (0.8 + Math.random() * 0.4));
}
