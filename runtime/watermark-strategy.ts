import type { WatermarkSettings } from './execution/watermark-generator.ts';

/**
 * How a source derives event time and watermarks.
 *
 * ```ts
 * WatermarkStrategy.boundedOutOfOrderness<Order>(5_000)   // events up to 5 s out of order are on time
 *   .withTimestamps((e) => e.source.tsMs)                  // default for Debezium sources: commit time
 *   .withIdleness(30_000);                                 // a partition silent for 30 s stops holding back
 * ```
 */
export class WatermarkStrategy<T> {
  private constructor(
    private readonly outOfOrdernessMs: number,
    private readonly timestampOf: ((value: T) => number) | undefined,
    private readonly idlenessMs: number | undefined,
  ) {}

  static boundedOutOfOrderness<T>(outOfOrdernessMs: number): WatermarkStrategy<T> {
    if (!Number.isFinite(outOfOrdernessMs) || outOfOrdernessMs < 0)
      throw new RangeError(`boundedOutOfOrderness needs a bound >= 0 ms, got ${outOfOrdernessMs}`);
    return new WatermarkStrategy<T>(outOfOrdernessMs, undefined, undefined);
  }

  static forMonotonousTimestamps<T>(): WatermarkStrategy<T> {
    return WatermarkStrategy.boundedOutOfOrderness<T>(0);
  }

  /** Event time of each record. @default the source's own timestamp (Debezium: `source.ts_ms`) */
  withTimestamps(timestampOf: (value: T) => number): WatermarkStrategy<T> {
    return new WatermarkStrategy<T>(this.outOfOrdernessMs, timestampOf, this.idlenessMs);
  }

  /** A partition without data for this long no longer holds the watermark back. @default never */
  withIdleness(idlenessMs: number): WatermarkStrategy<T> {
    if (!(idlenessMs > 0)) throw new RangeError(`withIdleness needs a duration > 0 ms, got ${idlenessMs}`);
    return new WatermarkStrategy<T>(this.outOfOrdernessMs, this.timestampOf, idlenessMs);
  }

  /** @internal */
  toSettings(): WatermarkSettings {
    const fn = this.timestampOf;
    return {
      outOfOrdernessMs: this.outOfOrdernessMs,
      timestampOf: fn === undefined ? undefined : (value) => fn(value as T),
      idlenessMs: this.idlenessMs,
    };
  }
}
