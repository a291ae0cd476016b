/** An event-time window `[start, end)`, epoch milliseconds. */
export interface TimeWindow {
  readonly start: number;
  readonly end: number;
}

/** The last timestamp inside the window; it fires when the watermark reaches this (Flink semantics). */
export const maxTimestamp = (window: TimeWindow): number => window.end - 1;

/** Windows that overlap or touch merge (session windows); Flink's `TimeWindow.intersects`. */
export const intersects = (a: TimeWindow, b: TimeWindow): boolean => a.start <= b.end && a.end >= b.start;

export const cover = (a: TimeWindow, b: TimeWindow): TimeWindow => ({
  start: Math.min(a.start, b.start),
  end: Math.max(a.end, b.end),
});

export const sameWindow = (a: TimeWindow, b: TimeWindow): boolean => a.start === b.start && a.end === b.end;

/** Start of the window of `size` (aligned to `offset`) that contains `timestamp`; negative times too. */
export function windowStart(timestamp: number, size: number, offset: number): number {
  return timestamp - ((((timestamp - offset) % size) + size) % size);
}
