/**
 * Event-time window assigners: which windows an element with timestamp `t` belongs to.
 *
 * ```ts
 * keyed.window(TumblingEventTimeWindows.of(60_000))              // [0, 60s), [60s, 120s), …
 * keyed.window(SlidingEventTimeWindows.of(60_000, 10_000))       // each element in 6 windows
 * keyed.window(EventTimeSessionWindows.withGap(30_000))          // per key, activity bursts
 * ```
 */
import { windowStart, type TimeWindow } from './time-window.ts';

export interface WindowAssigner {
  /** The windows an element with this event time belongs to. */
  assignWindows(timestamp: number): readonly TimeWindow[];
  /** Session windows: a key's overlapping windows merge into one. */
  readonly merging: boolean;
  readonly description: string;
}

function positive(what: string, ms: number): number {
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new RangeError(`${what} must be a whole number of ms > 0, got ${ms}`);
  return ms;
}

function validOffset(offset: number, period: number): number {
  if (!Number.isSafeInteger(offset) || Math.abs(offset) >= period)
    throw new RangeError(`window offset must be a whole number of ms with |offset| < ${period}, got ${offset}`);
  return offset;
}

/** Fixed-size, non-overlapping windows. */
export class TumblingEventTimeWindows implements WindowAssigner {
  readonly merging = false;

  private constructor(
    readonly sizeMs: number,
    readonly offsetMs: number,
  ) {}

  /** @param offsetMs shifts the window grid (e.g. time zones for daily windows). @default 0 */
  static of(sizeMs: number, offsetMs = 0): TumblingEventTimeWindows {
    return new TumblingEventTimeWindows(positive('tumbling window size', sizeMs), validOffset(offsetMs, sizeMs));
  }

  get description(): string {
    return `tumbling(${this.sizeMs} ms)`;
  }

  assignWindows(timestamp: number): readonly TimeWindow[] {
    const start = windowStart(timestamp, this.sizeMs, this.offsetMs);
    return [{ start, end: start + this.sizeMs }];
  }
}

/** Windows of `size` starting every `slide`; an element belongs to `size / slide` of them. */
export class SlidingEventTimeWindows implements WindowAssigner {
  readonly merging = false;

  private constructor(
    readonly sizeMs: number,
    readonly slideMs: number,
    readonly offsetMs: number,
  ) {}

  /** @param offsetMs shifts the window grid. @default 0 */
  static of(sizeMs: number, slideMs: number, offsetMs = 0): SlidingEventTimeWindows {
    positive('sliding window size', sizeMs);
    positive('sliding window slide', slideMs);
    return new SlidingEventTimeWindows(sizeMs, slideMs, validOffset(offsetMs, slideMs));
  }

  get description(): string {
    return `sliding(${this.sizeMs} ms every ${this.slideMs} ms)`;
  }

  assignWindows(timestamp: number): readonly TimeWindow[] {
    const windows: TimeWindow[] = [];
    for (
      let start = windowStart(timestamp, this.slideMs, this.offsetMs);
      start > timestamp - this.sizeMs;
      start -= this.slideMs
    ) {
      windows.push({ start, end: start + this.sizeMs });
    }
    return windows;
  }
}

/** Per key: an element opens `[t, t + gap)`; windows that overlap or touch merge. */
export class EventTimeSessionWindows implements WindowAssigner {
  readonly merging = true;

  private constructor(readonly gapMs: number) {}

  static withGap(gapMs: number): EventTimeSessionWindows {
    return new EventTimeSessionWindows(positive('session gap', gapMs));
  }

  get description(): string {
    return `session(gap ${this.gapMs} ms)`;
  }

  assignWindows(timestamp: number): readonly TimeWindow[] {
    return [{ start: timestamp, end: timestamp + this.gapMs }];
  }
}
