/**
 * A running count of late elements per window, as a first-class output: feed it the
 * `sideOutputLateRecords` stream of a window and sink the counts (upsert by operator, key, window).
 * The counts live in keyed state (one small value per window that received late elements, never
 * expired: bounded by the number of such windows).
 */
import type { LateRecord } from '../operators/window/window-operator.ts';
import type { DataStream } from './data-stream.ts';
import { valueState } from '../operators/transform/process.ts';

export interface WindowLateCount<K> {
  readonly operator: string;
  readonly key: K;
  readonly windowStart: number;
  readonly windowEnd: number;
  /** Late elements for this window so far (a running count: the latest emission is the total). */
  readonly lateCount: number;
  /** The largest lateness (watermark − event time, ms) seen for this window. */
  readonly maxLatenessMs: number;
}

export function lateCountsPerWindow<K, T>(late: DataStream<LateRecord<K, T>>): DataStream<WindowLateCount<K>> {
  return late
    .keyBy((r) => JSON.stringify([r.operator, r.key, r.windowStart, r.windowEnd]))
    .process({
      state: { count: valueState<number>(), maxLateness: valueState<number>() },
      processElement(r, ctx, out) {
        const lateCount = (ctx.state.count.value() ?? 0) + 1;
        const maxLatenessMs = Math.max(ctx.state.maxLateness.value() ?? 0, r.latenessMs);
        ctx.state.count.update(lateCount);
        ctx.state.maxLateness.update(maxLatenessMs);
        out.emit({
          operator: r.operator,
          key: r.key,
          windowStart: r.windowStart,
          windowEnd: r.windowEnd,
          lateCount,
          maxLatenessMs,
        });
      },
    });
}
