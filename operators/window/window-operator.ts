/**
 * The event-time window operator (after keyBy), with Flink's semantics:
 * - an element goes to the windows its assigner gives it; a window `[start, end)` fires once the
 *   watermark reaches `end - 1`, emitting an `on-time` result;
 * - a window is late once `end - 1 + allowedLateness <= watermark`; until then its state is kept
 *   and an element for it is added and re-fires it (`late-update`, once per batch and window,
 *   `updateCount` = results emitted before); at that point a timer clears its state;
 * - an element whose windows are all late goes to the late-data side output (if set), and counts
 *   in `cdcflow_late_events_total{reason="beyond-allowed-lateness"}` (without a side output also
 *   in `cdcflow_late_events_dropped_total`: it is dropped);
 * - session windows merge eagerly: a key's windows never overlap or touch.
 *
 * - a record that makes the user's function throw (aggregate `add`/`merge`, reduce) or whose value
 *   window state cannot store (reduce and process windows keep values) is dead-lettered under the
 *   job's record-error policy (stage = this operator's uid), like map/process failures; it leaves
 *   no trace in any window: every accumulator is computed before any is written. (An `add` that
 *   mutates its accumulator in place and then throws is not rolled back, as in Flink.)
 *
 * State per key: `windows` (map: [start, end] → accumulator and firing count) and the timers
 * (`keyed-timers.ts`); both are keyed state, so a restore fires every window exactly once. A
 * timer says only "look at this key at time t": windows whose end - 1 is t fire, windows whose
 * cleanup time is t are cleared; timers of windows merged away find nothing.
 */
import { CdcflowError, encodeKey, unstorableReason } from '../../state/index.ts';
import type { RecordDeadLetters } from '../record-dead-letters.ts';
import { userCodeFailed } from '../transform/user-code.ts';
import type { KeyedStateAccess, MapState } from '../keyed-state-access.ts';
import type {
  Operator,
  OperatorContext,
  OperatorMetrics,
  Output,
  OutputTag,
  RescaledSnapshot,
  StreamRecord,
} from '../operator.ts';
import { requireKeyedState } from '../transform/keyed-batch.ts';
import { KeyedTimers, OperatorWatermark } from '../transform/keyed-timers.ts';
import type { WindowAssigner } from './assigners.ts';
import { cover, intersects, maxTimestamp, sameWindow, type TimeWindow } from './time-window.ts';
import type { Firing, WindowContents } from './window-functions.ts';

export interface WindowOperatorOptions<In, Acc, Out> {
  readonly assigner: WindowAssigner;
  /** @default 0 */
  readonly allowedLatenessMs?: number;
  readonly lateDataTag?: OutputTag<In> | undefined;
  /** Late elements as {@link LateRecord}s (one per window they missed), for analysts. @default none */
  readonly lateRecordTag?: OutputTag<LateRecord<unknown, In>> | undefined;
  readonly contents: WindowContents<In, Acc, Out>;
}

/**
 * A late element with what an analyst needs to place it (as Quix's late callback gives): the
 * window it missed, how late it was and which operator dropped it. An element of several windows
 * (sliding) gives one record per window.
 */
export interface LateRecord<K, T> {
  readonly value: T;
  readonly key: K;
  readonly eventTime: number;
  readonly windowStart: number;
  readonly windowEnd: number;
  /** The operator's watermark when the element arrived. */
  readonly watermark: number;
  /** watermark − eventTime (ms). */
  readonly latenessMs: number;
  /** The window operator's uid. */
  readonly operator: string;
}

type WindowId = [start: number, end: number];

interface WindowSlot<Acc> {
  readonly accumulator: Acc;
  /** Results emitted for this window so far. */
  readonly firings: number;
}

const idOf = (window: TimeWindow): WindowId => [window.start, window.end];
const windowOf = ([start, end]: WindowId): TimeWindow => ({ start, end });

/** Throws for options no window operator can run with; returns the allowed lateness. */
export function checkWindowOptions<In, Acc, Out>(options: WindowOperatorOptions<In, Acc, Out>): number {
  const lateness = options.allowedLatenessMs ?? 0;
  if (!Number.isSafeInteger(lateness) || lateness < 0)
    throw new RangeError(`allowedLateness must be a whole number of ms >= 0, got ${lateness}`);
  if (options.assigner.merging && options.contents.merge === undefined) {
    throw new Error(`${options.assigner.description} windows merge: give the AggregateFunction a merge(a, b)`);
  }
  return lateness;
}

export function windowOperator<In, Acc, Out>(options: WindowOperatorOptions<In, Acc, Out>): Operator<In, Out> {
  return new WindowOperator(options, checkWindowOptions(options));
}

class WindowOperator<In, Acc, Out> implements Operator<In, Out> {
  private keyed!: KeyedStateAccess;
  private windows!: MapState<WindowId, WindowSlot<Acc>>;
  private timers!: KeyedTimers;
  private metrics!: OperatorMetrics;
  private deadLetters: RecordDeadLetters | undefined;
  private watermark = new OperatorWatermark(undefined);
  private readonly assigner: WindowAssigner;
  private readonly contents: WindowContents<In, Acc, Out>;
  private readonly lateDataTag: OutputTag<In> | undefined;
  private readonly lateRecordTag: OutputTag<LateRecord<unknown, In>> | undefined;
  private uid = '';

  constructor(
    options: WindowOperatorOptions<In, Acc, Out>,
    private readonly lateness: number,
  ) {
    this.assigner = options.assigner;
    this.contents = options.contents;
    this.lateDataTag = options.lateDataTag;
    this.lateRecordTag = options.lateRecordTag;
  }

  async open(context: OperatorContext, restored: unknown): Promise<void> {
    this.keyed = requireKeyedState(context, 'window');
    this.metrics = context.metrics;
    this.deadLetters = context.deadLetters;
    this.uid = context.uid;
    // Present from the start, at zero, so a rate alert works before the first late event.
    this.metrics.count('cdcflow_late_events_total', { reason: 'beyond-allowed-lateness' }, 0);
    if (this.lateDataTag === undefined && this.lateRecordTag === undefined)
      this.metrics.count('cdcflow_late_events_dropped_total', {}, 0);
    this.windows = this.keyed.getMapState<WindowId, WindowSlot<Acc>>({ name: 'windows' });
    this.timers = new KeyedTimers(this.keyed);
    this.watermark = new OperatorWatermark(restored);
    await this.timers.restore();
  }

  /** The runtime loaded every key of the batch and writes back after it. */
  processBatch(batch: readonly StreamRecord<In>[], out: Output<Out>): void {
    const lateChanged = new Map<string, { key: unknown; window: TimeWindow }>();
    let late = 0;
    for (const record of batch) {
      const timestamp = eventTimeOf(record);
      this.keyed.setCurrentKey(record.key);
      if (this.refusedAsUnstorable(record)) continue;
      let touched: TimeWindow[];
      try {
        touched = this.assigner.merging
          ? this.addToSession(record.value, timestamp)
          : this.addToWindows(record.value, timestamp);
      } catch (error) {
        userCodeFailed(this.deadLetters, record, error, 'the window function');
        continue;
      }
      if (touched.length === 0) {
        late += 1;
        if (this.lateDataTag !== undefined) out.emitSide(this.lateDataTag, record.value, timestamp);
        if (this.lateRecordTag !== undefined) this.emitLateRecords(this.lateRecordTag, record, timestamp, out);
      }
      for (const window of touched) {
        if (maxTimestamp(window) > this.watermark.current) continue;
        lateChanged.set(`${window.start}:${window.end}:${encodeKey(record.key).toString('latin1')}`, {
          key: record.key,
          window,
        });
      }
    }
    for (const { key, window } of lateChanged.values()) {
      this.keyed.setCurrentKey(key);
      const slot = this.windows.get(idOf(window));
      if (slot !== undefined) this.fire(key, window, slot, 'late-update', out); // undefined: merged away since
    }
    if (late > 0) this.countLate(late);
  }

  async onWatermark(watermark: number, out: Output<Out>): Promise<void> {
    this.watermark.advance(watermark);
    await this.timers.advance('event-time', watermark, (key, timestamp) => this.onTimer(key, timestamp, out));
  }

  snapshotState(): unknown {
    return this.watermark.snapshot();
  }

  mergeRescaled(parts: readonly RescaledSnapshot[]): unknown {
    return OperatorWatermark.merge(parts);
  }

  private isLate(window: TimeWindow): boolean {
    return maxTimestamp(window) + this.lateness <= this.watermark.current;
  }

  /**
   * A value that reduce or process windows would keep but state cannot store (nested past
   * MAX_STORABLE_DEPTH) fails at the flush, naming no record: refused here instead.
   */
  private refusedAsUnstorable(record: StreamRecord<In>): boolean {
    if (this.contents.keepsValues !== true || this.deadLetters === undefined) return false;
    const reason = unstorableReason(record.value);
    if (reason === undefined) return false;
    this.deadLetters.reject({
      kind: 'unstorable',
      reason,
      value: record.value,
      ...(record.key === undefined ? {} : { key: record.key }),
      ...(record.timestamp === undefined ? {} : { timestampMs: record.timestamp }),
    });
    return true;
  }

  /**
   * Tumbling and sliding windows; returns the windows the element went to (none: late). Every
   * accumulator is computed before any is written, so a throwing function leaves no window changed.
   */
  private addToWindows(value: In, timestamp: number): TimeWindow[] {
    const updates: { window: TimeWindow; fresh: boolean; slot: WindowSlot<Acc> }[] = [];
    for (const window of this.assigner.assignWindows(timestamp)) {
      if (this.isLate(window)) continue;
      const slot = this.windows.get(idOf(window));
      updates.push({
        window,
        fresh: slot === undefined,
        slot: {
          accumulator: this.contents.add(slot?.accumulator ?? this.contents.create(), value),
          firings: slot?.firings ?? 0,
        },
      });
    }
    for (const { window, fresh, slot } of updates) {
      this.windows.put(idOf(window), slot);
      if (fresh) this.registerTimers(window);
    }
    return updates.map((u) => u.window);
  }

  /** Session windows: the element's window absorbs every window of the key it overlaps or touches. */
  private addToSession(value: In, timestamp: number): TimeWindow[] {
    let merged = this.assigner.assignWindows(timestamp)[0] as TimeWindow;
    const existing = [...this.windows.entries()].map(([id, slot]) => ({ window: windowOf(id), slot }));
    existing.sort((a, b) => a.window.start - b.window.start);
    const absorbed: typeof existing = [];
    for (const entry of existing) {
      if (!intersects(entry.window, merged)) continue;
      merged = cover(merged, entry.window);
      absorbed.push(entry);
    }
    // A merge with a live window is never late (it ends no earlier); alone, the element may be.
    if (absorbed.length === 0 && this.isLate(merged)) return [];
    const merge = this.contents.merge as (a: Acc, b: Acc) => Acc;
    const parts = absorbed.map((entry) => entry.slot.accumulator);
    const base = parts.length === 0 ? this.contents.create() : parts.reduce((a, b) => merge(a, b));
    const accumulator = this.contents.add(base, value);
    for (const entry of absorbed) this.windows.remove(idOf(entry.window));
    const firings = Math.max(0, ...absorbed.map((entry) => entry.slot.firings));
    this.windows.put(idOf(merged), { accumulator, firings });
    if (!absorbed.some((entry) => sameWindow(entry.window, merged))) this.registerTimers(merged);
    return [merged];
  }

  private registerTimers(window: TimeWindow): void {
    const fireAt = maxTimestamp(window);
    if (fireAt > this.watermark.current) this.timers.register('event-time', fireAt);
    if (this.lateness > 0) this.timers.register('event-time', fireAt + this.lateness);
  }

  private onTimer(key: unknown, timestamp: number, out: Output<Out>): void {
    for (const [id, slot] of this.windows.entries()) {
      const window = windowOf(id);
      const fireAt = maxTimestamp(window);
      if (fireAt === timestamp) this.fire(key, window, slot, 'on-time', out);
      if (fireAt + this.lateness === timestamp) this.windows.remove(id);
    }
  }

  private fire(key: unknown, window: TimeWindow, slot: WindowSlot<Acc>, firing: Firing, out: Output<Out>): void {
    this.contents.emit(
      key,
      { window, firing, updateCount: slot.firings, currentWatermark: this.watermark.current },
      slot.accumulator,
      out,
    );
    this.windows.put(idOf(window), { accumulator: slot.accumulator, firings: slot.firings + 1 });
  }

  private emitLateRecords(
    tag: OutputTag<LateRecord<unknown, In>>,
    record: StreamRecord<In>,
    eventTime: number,
    out: Output<Out>,
  ): void {
    const watermark = this.watermark.current;
    for (const window of this.assigner.assignWindows(eventTime)) {
      const late: LateRecord<unknown, In> = {
        value: record.value,
        key: record.key,
        eventTime,
        windowStart: window.start,
        windowEnd: window.end,
        watermark,
        latenessMs: watermark - eventTime,
        operator: this.uid,
      };
      out.emitSide(tag, late, eventTime);
    }
  }

  private countLate(count: number): void {
    this.metrics.count('cdcflow_late_events_total', { reason: 'beyond-allowed-lateness' }, count);
    if (this.lateDataTag === undefined && this.lateRecordTag === undefined)
      this.metrics.count('cdcflow_late_events_dropped_total', {}, count);
  }
}

function eventTimeOf(record: StreamRecord<unknown>): number {
  if (record.timestamp === undefined) {
    throw new CdcflowError(
      'a window got a record without event time: give the source a WatermarkStrategy (env.fromSource(source, { watermarks }))',
      { domain: 'user' },
    );
  }
  return record.timestamp;
}
