/**
 * The watermark of one split whose records carry their upstream tasks' watermarks (a repartition
 * topic between group-mode stages): the minimum over the upstream origins seen on it, as a Flink
 * operator takes the minimum over its input channels (`StatusWatermarkValve`), with the same
 * idleness rules:
 * - an origin heard from neither by a record nor by a control record for `idlenessMs` is idle and
 *   left out (its upstream task died, its partition moved, or its source went quiet), so a gone
 *   upstream task does not hold the split back forever;
 * - an idle origin heard from again counts only once its watermark has caught up with the
 *   split's; until then its records are judged by the split's watermark (late if behind it);
 * - an origin seen for the first time counts at once (an upstream task announces itself at −∞
 *   before it has read anything, so it holds the split back as an unread partition holds a
 *   single-process source back); when the upstream says how many origins there are, the split
 *   holds back until it has seen that many, or for at most `idlenessMs` from its first one (an
 *   upstream task that never starts is then as idle as a partition that never delivers);
 * - the split's watermark never goes back.
 */
import type { CarriedWatermark, StoredCarriedWatermark } from '../../operators/sources/source.ts';

interface Origin {
  watermark: number;
  lastActivityMs: number;
  idle: boolean;
  /** Counts for the minimum (false after idleness, until it has caught up). */
  aligned: boolean;
}

export class CarriedWatermarks {
  private readonly origins = new Map<string, Origin>();
  private current = Number.NEGATIVE_INFINITY;
  /** The most origins an upstream said there are, and when this split first heard from one. */
  private expected = 0;
  private firstSeenMs: number | undefined;

  /** One carried watermark, read now; an origin's watermark never goes back. */
  observe(carried: CarriedWatermark, nowMs: number): void {
    this.firstSeenMs ??= nowMs;
    if (carried.origins !== undefined && carried.origins > this.expected) this.expected = carried.origins;
    const origin = this.origins.get(carried.origin);
    if (origin === undefined) {
      this.origins.set(carried.origin, {
        watermark: carried.watermark,
        lastActivityMs: nowMs,
        idle: false,
        aligned: true,
      });
      return;
    }
    if (carried.watermark > origin.watermark) origin.watermark = carried.watermark;
    origin.lastActivityMs = nowMs;
    if (origin.idle) {
      origin.idle = false;
      origin.aligned = false;
    }
  }

  /**
   * The split's watermark now: the minimum over active, aligned origins, never below what it was;
   * `undefined` when every origin is idle (the split then holds nothing back).
   */
  value(nowMs: number, idlenessMs: number | undefined): number | undefined {
    let min = Number.POSITIVE_INFINITY;
    let active = false;
    for (const origin of this.origins.values()) {
      if (idlenessMs !== undefined && !origin.idle && nowMs - origin.lastActivityMs >= idlenessMs) {
        origin.idle = true;
        origin.aligned = false;
      }
      if (origin.idle) continue;
      active = true;
      if (!origin.aligned) {
        if (origin.watermark < this.current) continue;
        origin.aligned = true;
      }
      if (origin.watermark < min) min = origin.watermark;
    }
    if (!active) return undefined;
    const waiting =
      this.origins.size < this.expected &&
      (idlenessMs === undefined || nowMs - (this.firstSeenMs ?? nowMs) < idlenessMs);
    // Origins not seen yet may be behind every one seen: hold, as unread partitions do.
    if (waiting) return this.current;
    if (min !== Number.POSITIVE_INFINITY && min > this.current) this.current = min;
    return this.current;
  }

  /** For the checkpoint: every origin's watermark (idleness is not stored; it counts again from the restore). */
  stored(split: string): StoredCarriedWatermark[] {
    return [...this.origins].map(([origin, o]) => ({ split, origin, watermark: storedWatermark(o.watermark) }));
  }

  /** Origins from a checkpoint, active from `nowMs` (as the splits a checkpoint names are). */
  restore(entries: readonly StoredCarriedWatermark[], nowMs: number): void {
    for (const entry of entries) this.observe({ origin: entry.origin, watermark: Number(entry.watermark) }, nowMs);
  }
}

function storedWatermark(watermark: number): StoredCarriedWatermark['watermark'] {
  if (watermark === Number.NEGATIVE_INFINITY) return '-Infinity';
  if (watermark === Number.POSITIVE_INFINITY) return 'Infinity';
  return watermark;
}
