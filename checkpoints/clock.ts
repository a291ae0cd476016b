/** Time source and timers of the coordinator; injected so tests control time without sleeping. */
export interface Clock {
  now(): number;
  /** Runs `fn` once after `ms`; returns a function that cancels it (a no-op once it has run). */
  schedule(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(ms, fn) {
    const timer = setTimeout(fn, ms);
    // Checkpoint timers alone must not keep a finished process alive.
    timer.unref();
    return () => clearTimeout(timer);
  },
};
