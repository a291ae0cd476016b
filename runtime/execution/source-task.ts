/**
 * Drives one source reader: polls it, stamps event time, generates per-split watermarks and
 * pushes batches to the operators it feeds. Barriers are injected between two polls, which is
 * what makes the recorded positions exact.
 */
import type { StreamRecord } from '../../operators/operator.ts';
import type { PollResult, SourceReader, SourceSnapshot } from '../../operators/sources/source.ts';
import type { Downstream, Element } from './operator-runner.ts';
import type { WatermarkGenerator } from './watermark-generator.ts';

export class SourceTask {
  readonly downstream: Downstream[] = [];
  ended = false;
  /** The reader's assignment as last registered (readers return the same array until it changes). */
  private registeredAssignment: readonly string[] | undefined;

  constructor(
    readonly uid: string,
    readonly name: string,
    readonly reader: SourceReader<unknown>,
    private readonly watermarks: WatermarkGenerator | undefined,
    private readonly onRecords: (count: number) => void,
  ) {}

  get currentWatermark(): number | undefined {
    return this.watermarks?.current;
  }

  /** Polls once and pushes what arrived; returns whether anything was read. */
  async pollOnce(maxWaitMs: number): Promise<'data' | 'idle' | 'end'> {
    return this.deliver(await this.reader.poll(maxWaitMs));
  }

  /** Pushes what one poll of the reader returned (the second half of `pollOnce`). */
  async deliver(result: PollResult<unknown>): Promise<'data' | 'idle' | 'end'> {
    this.registerAssignedSplits();
    if (result === 'end') {
      this.ended = true;
      for (const d of this.downstream) await d.runner.endInput(d.input);
      return 'end';
    }
    if (result === 'idle') {
      await this.emitWatermark(this.watermarks?.onIdleTick(Date.now()));
      return 'idle';
    }
    const records =
      this.watermarks === undefined ? result.records : result.records.map((r) => this.stamp(r, result.split));
    this.onRecords(records.length);
    // A source's own record times (before a timestamp assigner) are its commit times: Debezium's source.ts_ms.
    const sourceTs = newestTimestamp(result.records);
    // A batch of nothing but an exchange's watermark-only control records moves time, not records.
    if (records.length > 0 || result.carried === undefined) {
      await this.emitWatermark(this.watermarks?.beforeBatch());
      await this.send(sourceTs === undefined ? { kind: 'batch', records } : { kind: 'batch', records, sourceTs });
    }
    const now = Date.now();
    if (result.carried !== undefined) this.watermarks?.carry(result.split, result.carried, now);
    await this.emitWatermark(this.watermarks?.afterBatch(result.split, now));
    return 'data';
  }

  async injectBarrier(checkpointId: number): Promise<{ snapshot: SourceSnapshot; watermark: number | undefined }> {
    const positions = this.reader.snapshot(checkpointId);
    const carried = this.watermarks?.storedCarried() ?? [];
    const snapshot = carried.length === 0 ? positions : { ...positions, carriedWatermarks: carried };
    for (const d of this.downstream) await d.runner.pushBarrier(d.input, checkpointId);
    return { snapshot, watermark: this.watermarks?.current };
  }

  /**
   * After the poll that may have waited for the assignment, before any of its records is stamped.
   * `undefined` is an assignment not known yet (before the group join), unlike an empty one.
   */
  private registerAssignedSplits(): void {
    const splits = this.reader.assignedSplits?.();
    if (this.watermarks === undefined || splits === undefined || splits === this.registeredAssignment) return;
    this.registeredAssignment = splits;
    this.watermarks.assign(splits, Date.now());
  }

  private stamp(record: StreamRecord<unknown>, split: string): StreamRecord<unknown> {
    const generator = this.watermarks as WatermarkGenerator;
    const timestamp = generator.timestampOf(record);
    generator.observe(split, timestamp);
    return timestamp === record.timestamp ? record : { value: record.value, timestamp, key: record.key };
  }

  private async emitWatermark(update: Element | undefined): Promise<void> {
    if (update !== undefined) await this.send(update);
  }

  private async send(element: Element): Promise<void> {
    for (const d of this.downstream) await d.runner.push(d.input, element);
  }
}

function newestTimestamp(records: readonly StreamRecord<unknown>[]): number | undefined {
  let newest: number | undefined;
  for (const r of records)
    if (r.timestamp !== undefined && (newest === undefined || r.timestamp > newest)) newest = r.timestamp;
  return newest;
}
