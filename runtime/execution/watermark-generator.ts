/**
 * Bounded-out-of-orderness watermarks generated per split (Kafka partition), as Flink does:
 * a split's watermark is its highest timestamp minus the bound minus 1 ms; the source's is the
 * minimum over splits that are not idle; it never goes back. A split with no data for
 * `idlenessMs` stops holding the others back; when every split is idle the source says so, so
 * downstream operators ignore it instead of stalling.
 *
 * A source that owns no split at all (a subtask with more subtasks than partitions, a consumer
 * the group gave nothing) is idle too, whatever `idlenessMs` says — as a Flink reader without
 * splits is — but only once its reader *knows* its assignment is empty: before the group join it
 * holds event time back, because the splits it is about to get may be behind the others. A split
 * assigned later makes it active again (the `active` element precedes its first records).
 *
 * A split whose batches carry upstream watermarks (an exchange between group-mode stages) takes
 * them instead of its records' timestamps: its watermark is the minimum over its upstream origins
 * (carried-watermarks.ts), so lateness is decided by the upstream source partitions' watermarks.
 */
import type { StreamRecord } from '../../operators/operator.ts';
import type { CarriedWatermark, StoredCarriedWatermark } from '../../operators/sources/source.ts';
import { CarriedWatermarks } from './carried-watermarks.ts';
import type { Element } from './operator-runner.ts';

export interface WatermarkSettings {
  readonly outOfOrdernessMs: number;
  readonly timestampOf: ((value: unknown, record: StreamRecord<unknown>) => number) | undefined;
  readonly idlenessMs: number | undefined;
}

interface SplitClock {
  maxTimestamp: number;
  lastActivityMs: number;
  idle: boolean;
  /** Set once the split carried an upstream watermark: its watermark comes from there. */
  carried?: CarriedWatermarks;
}

export class WatermarkGenerator {
  private readonly splits = new Map<string, SplitClock>();
  private emitted = Number.NEGATIVE_INFINITY;
  /** Downstream was told `idle` and has not heard `active` or a watermark since. */
  private signalledIdle = false;
  /** The reader reported its assignment (possibly empty), so no splits means it owns none. */
  private assignmentKnown = false;

  constructor(
    private readonly settings: WatermarkSettings,
    restored?: number,
  ) {
    if (restored !== undefined) this.emitted = restored;
  }

  get current(): number {
    return this.emitted;
  }

  /**
   * Splits known before any data arrives (those in the restored checkpoint, the source's
   * assignment) hold the watermark back until they produce or go idle; idleness counts from now.
   */
  register(splits: readonly string[], nowMs: number): void {
    for (const split of splits)
      if (!this.splits.has(split))
        this.splits.set(split, { maxTimestamp: Number.NEGATIVE_INFINITY, lastActivityMs: nowMs, idle: false });
  }

  /** The reader's assignment, now known: registered like `register`, and an empty one makes the source idle. */
  assign(splits: readonly string[], nowMs: number): void {
    this.assignmentKnown = true;
    this.register(splits, nowMs);
  }

  /** Before a batch goes downstream: `active` first if downstream was told the source is idle. */
  beforeBatch(): Element | undefined {
    if (!this.signalledIdle) return undefined;
    this.signalledIdle = false;
    return { kind: 'active' };
  }

  timestampOf(record: StreamRecord<unknown>): number {
    if (this.settings.timestampOf !== undefined) return this.settings.timestampOf(record.value, record);
    if (record.timestamp === undefined)
      throw new Error(
        'a record reached watermark generation without a timestamp: give the strategy withTimestamps(fn)',
      );
    return record.timestamp;
  }

  observe(split: string, timestamp: number): void {
    let clock = this.splits.get(split);
    if (clock === undefined)
      this.splits.set(split, (clock = { maxTimestamp: timestamp, lastActivityMs: Date.now(), idle: false }));
    if (timestamp > clock.maxTimestamp) clock.maxTimestamp = timestamp;
  }

  /** Upstream watermarks a batch of `split` carried (`SourceBatch.carried`), before `afterBatch`. */
  carry(split: string, carried: readonly CarriedWatermark[], nowMs: number): void {
    if (carried.length === 0) return;
    const clock = this.carriedOf(split, nowMs);
    for (const c of carried) clock.observe(c, nowMs);
  }

  /** The carried watermarks of a restored checkpoint (its splits then hold back as before it). */
  restoreCarried(entries: readonly StoredCarriedWatermark[], nowMs: number): void {
    for (const entry of entries) this.carriedOf(entry.split, nowMs).restore([entry], nowMs);
  }

  /** For the checkpoint, beside the source's positions. */
  storedCarried(): StoredCarriedWatermark[] {
    return [...this.splits].flatMap(([split, clock]) => clock.carried?.stored(split) ?? []);
  }

  private carriedOf(split: string, nowMs: number): CarriedWatermarks {
    let clock = this.splits.get(split);
    if (clock === undefined)
      this.splits.set(split, (clock = { maxTimestamp: Number.NEGATIVE_INFINITY, lastActivityMs: nowMs, idle: false }));
    return (clock.carried ??= new CarriedWatermarks());
  }

  afterBatch(split: string, nowMs: number): Element | undefined {
    const clock = this.splits.get(split);
    if (clock !== undefined) {
      clock.lastActivityMs = nowMs;
      clock.idle = false;
    }
    return this.next(nowMs);
  }

  onIdleTick(nowMs: number): Element | undefined {
    return this.next(nowMs);
  }

  private next(nowMs: number): Element | undefined {
    const idleness = this.settings.idlenessMs;
    let min = Number.POSITIVE_INFINITY;
    for (const clock of this.splits.values()) {
      if (idleness !== undefined && nowMs - clock.lastActivityMs >= idleness) clock.idle = true;
      if (clock.idle) continue;
      if (clock.carried === undefined) {
        min = Math.min(min, clock.maxTimestamp - this.settings.outOfOrdernessMs - 1);
        continue;
      }
      // Every origin idle: the split holds nothing back, as an idle split.
      const carried = clock.carried.value(nowMs, idleness);
      if (carried !== undefined) min = Math.min(min, carried);
    }
    if (min === Number.POSITIVE_INFINITY) {
      // No split yet and the assignment not known: the splits to come hold event time back.
      if ((this.splits.size === 0 && !this.assignmentKnown) || this.signalledIdle) return undefined;
      this.signalledIdle = true;
      return { kind: 'idle' };
    }
    if (min <= this.emitted) return undefined;
    this.emitted = min;
    // A watermark makes the source active downstream as well.
    this.signalledIdle = false;
    return { kind: 'watermark', timestamp: min };
  }
}
