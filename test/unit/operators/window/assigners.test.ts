import { describe, expect, it } from 'vitest';
import {
  EventTimeSessionWindows,
  SlidingEventTimeWindows,
  TumblingEventTimeWindows,
} from '../../../../runtime/index.ts';

describe('window assigners', () => {
  it('tumbling: the one window containing t, aligned to the offset, negative times too', () => {
    expect(TumblingEventTimeWindows.of(60_000).assignWindows(125_000)).toEqual([{ start: 120_000, end: 180_000 }]);
    expect(TumblingEventTimeWindows.of(60_000).assignWindows(119_999)).toEqual([{ start: 60_000, end: 120_000 }]);
    expect(TumblingEventTimeWindows.of(60_000).assignWindows(-1)).toEqual([{ start: -60_000, end: 0 }]);
    expect(TumblingEventTimeWindows.of(60_000, 15_000).assignWindows(10_000)).toEqual([
      { start: -45_000, end: 15_000 },
    ]);
  });

  it('sliding: size/slide windows, latest first', () => {
    expect(SlidingEventTimeWindows.of(10_000, 5000).assignWindows(7000)).toEqual([
      { start: 5000, end: 15_000 },
      { start: 0, end: 10_000 },
    ]);
    expect(SlidingEventTimeWindows.of(60_000, 20_000).assignWindows(60_000)).toHaveLength(3);
  });

  it('session: [t, t + gap)', () => {
    expect(EventTimeSessionWindows.withGap(30_000).assignWindows(1000)).toEqual([{ start: 1000, end: 31_000 }]);
    expect(EventTimeSessionWindows.withGap(30_000).merging).toBe(true);
  });

  it('rejects sizes that are not positive whole milliseconds', () => {
    expect(() => TumblingEventTimeWindows.of(0)).toThrow(RangeError);
    expect(() => SlidingEventTimeWindows.of(10_000, 1.5)).toThrow(RangeError);
    expect(() => EventTimeSessionWindows.withGap(-1)).toThrow(RangeError);
    expect(() => TumblingEventTimeWindows.of(1000, 1000)).toThrow(RangeError);
  });
});
