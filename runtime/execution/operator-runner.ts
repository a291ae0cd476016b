/**
 * Runs one operator instance: aligns barriers across its inputs, combines input watermarks,
 * keys records for keyed operators (and loads their state for the batch: one prefetch of every
 * key before `processBatch`, one flush after it), and routes what the operator emits to the
 * operators downstream. Elements are pushed depth-first and awaited, so a slow sink slows the source loop
 * instead of filling memory (backpressure by construction).
 */
import type { Operator, OperatorSnapshot, Output, OutputTag, StreamRecord } from '../../operators/operator.ts';
import { locateError, recordLocationOf, type KeyedBatchState } from '../../state/index.ts';
import { BarrierAligner } from './barrier-aligner.ts';
import { ReentrantOperatorCallError } from './reentrant-call-error.ts';
import { WatermarkHolder } from './watermark-holder.ts';

export type Element =
  /**
   * `sourceTs`: the newest source commit time (epoch ms) among the source records this batch
   * derives from — what sink freshness is measured from, whatever the operators in between.
   */
  | { readonly kind: 'batch'; readonly records: readonly StreamRecord<unknown>[]; readonly sourceTs?: number }
  | { readonly kind: 'watermark'; readonly timestamp: number }
  /** The sender has nothing to say about event time for now (a source without splits, or whose splits are all idle). */
  | { readonly kind: 'idle' }
  /** The sender is active again after `idle` (sent before its next records); a watermark means active too. */
  | { readonly kind: 'active' };

/**
 * What the barrier aligner may hold back on an input: its elements and its end. An input's end
 * must not overtake what that input sent before it, or the last input's end would fire every
 * window (event time jumps to +∞) before the held records were judged, making them late.
 */
type Held = Element | { readonly kind: 'end' } | { readonly kind: 'barrier'; readonly checkpointId: number };

const heldBarrier = (checkpointId: number): Held => ({ kind: 'barrier', checkpointId });

/** Where elements of one edge go: an operator, or the keyed exchange in front of one. */
export interface ElementReceiver {
  push(input: number, element: Element): Promise<void>;
  pushBarrier(input: number, checkpointId: number): Promise<void>;
  /** One input (channel) of the receiver ended. */
  endInput(input: number): Promise<void>;
}

export interface Downstream {
  readonly runner: ElementReceiver;
  readonly input: number;
  /** Side output id, undefined for the main output. */
  readonly sideOutput: string | undefined;
}

export interface RunnerHooks {
  /** The operator took its snapshot for `checkpointId`; the runtime acks the coordinator. */
  snapshotTaken(runner: OperatorRunner, checkpointId: number, snapshot: OperatorSnapshot): Promise<void>;
  recordsIn(uid: string, count: number): void;
  recordsOut(uid: string, count: number): void;
  /** Time an operator spent in its own code (`busy`) and blocked handing output downstream (`backpressured`), for the UI. */
  timeSpent?(uid: string, kind: 'busy' | 'backpressured', ms: number): void;
  watermarkAdvanced(uid: string, watermark: number): void;
  /** Which subtask runs this operator, for the location of its errors. @default 0 */
  readonly subtaskIndex?: number;
  /**
   * Writes the dead letters the operator queued (records it gave up on). Awaited after every call
   * into the operator that can reject records and before its snapshot is acknowledged, so no
   * checkpoint that skips a record completes before the record's letter is written.
   */
  flushDeadLetters?(): Promise<void>;
  /** Sinks only: a batch of `count` records whose newest source commit is `sourceTs` arrived (runtime/signals). */
  sinkReceived?(uid: string, sourceTs: number | undefined, count: number): void;
  /** Sinks only: barrier `checkpointId` aligned; what arrived before it belongs to that checkpoint. */
  barrierAligned?(uid: string, checkpointId: number): void;
}

class CollectingOutput implements Output<unknown> {
  main: StreamRecord<unknown>[] = [];
  side = new Map<string, StreamRecord<unknown>[]>();

  emit(value: unknown, timestamp?: number): void {
    this.main.push({ value, timestamp });
  }

  emitSide<S>(tag: OutputTag<S>, value: S, timestamp?: number): void {
    let list = this.side.get(tag.id);
    if (list === undefined) this.side.set(tag.id, (list = []));
    list.push({ value, timestamp });
  }

  take(): { main: StreamRecord<unknown>[]; side: Map<string, StreamRecord<unknown>[]> } {
    const taken = { main: this.main, side: this.side };
    this.main = [];
    this.side = new Map();
    return taken;
  }
}

export class OperatorRunner implements ElementReceiver {
  readonly downstream: Downstream[] = [];
  private readonly aligner: BarrierAligner<Held>;
  private readonly watermarks: WatermarkHolder;
  private readonly output = new CollectingOutput();
  private endedInputs = 0;
  /** The entry point (push, barrier, end, tick) now running; see `exclusive`. */
  private running: string | undefined;
  /** Downstream was told this operator is idle (every input is) and not told otherwise since. */
  private signalledIdle = false;
  /**
   * Source commit times carried to the outputs: what processBatch emits derives from its batch
   * (`batchSourceTs`); what watermarks and timers emit (window results) from everything received
   * so far, so the newest source time that reached this operator (`sourceFrontier`).
   */
  private batchSourceTs: number | undefined;
  private sourceFrontier: number | undefined;

  constructor(
    readonly uid: string,
    readonly name: string,
    readonly operator: Operator<unknown, unknown>,
    readonly inputCount: number,
    private readonly keySelector: ((value: unknown) => unknown) | undefined,
    private readonly hooks: RunnerHooks,
    restoredWatermark?: number,
    /** The keyed state of a keyed operator: loaded for each batch before `processBatch`, written back after it. */
    private readonly keyedState?: KeyedBatchState,
  ) {
    this.aligner = new BarrierAligner<Held>(inputCount);
    this.watermarks = new WatermarkHolder(inputCount, restoredWatermark);
  }

  get currentWatermark(): number {
    return this.watermarks.value;
  }

  async push(input: number, element: Element): Promise<void> {
    const verdict = this.aligner.onElement(input, element);
    if (verdict.kind === 'pass') await this.exclusive(element.kind, () => this.handle(input, element));
  }

  async pushBarrier(input: number, checkpointId: number): Promise<void> {
    const verdict = this.aligner.onBarrier(input, checkpointId, heldBarrier);
    if (verdict.kind === 'aligned')
      await this.exclusive(`barrier ${checkpointId}`, () => this.snapshotAndRelease(checkpointId));
  }

  /** After alignment: snapshot, forward the barrier, then what the aligner held back, in arrival order. */
  private async snapshotAndRelease(checkpointId: number): Promise<void> {
    this.hooks.barrierAligned?.(this.uid, checkpointId);
    const snapshot = await this.operator.snapshotState?.(checkpointId);
    await this.hooks.flushDeadLetters?.();
    await this.hooks.snapshotTaken(this, checkpointId, snapshot);
    for (const d of this.downstream) await d.runner.pushBarrier(d.input, checkpointId);
    // Held elements go through the aligner again: a held later barrier blocks its input anew.
    for (const held of this.aligner.drain()) {
      if (held.element.kind === 'barrier') {
        const next = held.element.checkpointId;
        if (this.aligner.onBarrier(held.input, next, heldBarrier).kind === 'aligned')
          await this.snapshotAndRelease(next);
      } else if (this.aligner.onElement(held.input, held.element).kind === 'pass') {
        await this.handle(held.input, held.element);
      }
    }
  }

  /** Lets the operator fire processing-time timers; a no-op for operators without the hook. */
  async tick(now: number): Promise<void> {
    const onProcessingTime = this.operator.onProcessingTime?.bind(this.operator);
    if (onProcessingTime === undefined) return;
    await this.exclusive('timers', async () => {
      await onProcessingTime(now, this.output);
      await this.hooks.flushDeadLetters?.();
      await this.flushOutput();
    });
  }

  async endInput(input: number): Promise<void> {
    const verdict = this.aligner.onElement(input, { kind: 'end' });
    if (verdict.kind === 'pass') await this.exclusive('end of input', () => this.finishInput());
  }

  /**
   * Runs one entry point to completion before another may start. The single awaited chain that
   * drives the job guarantees it; this turns a violation (a second caller while a snapshot or
   * the release of held elements awaits) into an error instead of silently reordered records.
   */
  private async exclusive(call: string, body: () => Promise<void>): Promise<void> {
    if (this.running !== undefined) throw new ReentrantOperatorCallError(this.name, call, this.running);
    this.running = call;
    try {
      await body();
    } catch (error) {
      // The deepest operator that failed names itself; upstream runners only pass it on.
      throw locateError(error, { operator: this.uid, subtask: this.hooks.subtaskIndex ?? 0 });
    } finally {
      this.running = undefined;
    }
  }

  private async finishInput(): Promise<void> {
    this.endedInputs += 1;
    if (this.endedInputs < this.inputCount) return;
    // End of input means no more data on any path: fire what event time is waiting for.
    await this.advanceWatermark(Number.POSITIVE_INFINITY);
    for (const d of this.downstream) await d.runner.endInput(d.input);
  }

  private async handle(input: number, element: Held): Promise<void> {
    switch (element.kind) {
      case 'end':
        return this.finishInput();
      case 'batch': {
        const records = this.keySelector === undefined ? element.records : element.records.map((r) => this.keyed(r));
        this.hooks.recordsIn(this.uid, records.length);
        const sourceTs = element.sourceTs;
        if (sourceTs !== undefined && (this.sourceFrontier === undefined || sourceTs > this.sourceFrontier))
          this.sourceFrontier = sourceTs;
        this.hooks.sinkReceived?.(this.uid, sourceTs, records.length);
        this.batchSourceTs = sourceTs;
        const started = performance.now();
        try {
          await this.processKeyedBatch(records);
        } catch (error) {
          // A batch of one names its record; in a larger batch only the operator knows which one failed.
          const only = records.length === 1 ? recordLocationOf(records[0]?.value, records[0]?.key) : undefined;
          throw only === undefined
            ? error
            : locateError(error, { operator: this.uid, subtask: this.hooks.subtaskIndex ?? 0, record: only });
        }
        await this.hooks.flushDeadLetters?.();
        const processed = performance.now();
        await this.flushOutput();
        this.batchSourceTs = undefined;
        // Elements go depth-first: the time spent in flushOutput is time waiting on downstream.
        this.hooks.timeSpent?.(this.uid, 'busy', processed - started);
        this.hooks.timeSpent?.(this.uid, 'backpressured', performance.now() - processed);
        return;
      }
      case 'watermark': {
        await this.activate(input);
        const advanced = this.watermarks.update(input, element.timestamp);
        if (advanced !== undefined) await this.advanceWatermark(advanced);
        return;
      }
      case 'active':
        return this.activate(input);
      case 'idle': {
        const advanced = this.watermarks.markIdle(input);
        if (advanced !== undefined) await this.advanceWatermark(advanced);
        if (this.watermarks.idle && !this.signalledIdle) {
          this.signalledIdle = true;
          await this.sendStatus({ kind: 'idle' });
        }
        return;
      }
    }
  }

  /**
   * The operator's `processBatch`, with the state of every key of the batch loaded before (one
   * store read) and the changes written back after (one store write), so the operator reads and
   * writes state synchronously per record. Nothing is written back if the operator throws: the
   * job fails and restores from a checkpoint.
   */
  private async processKeyedBatch(records: readonly StreamRecord<unknown>[]): Promise<void> {
    const state = this.keyedState;
    if (state === undefined) return this.operator.processBatch(records, this.output);
    const keys = new Set<unknown>();
    for (const record of records) keys.add(record.key);
    await state.prefetch(keys);
    await this.operator.processBatch(records, this.output);
    await state.flush();
  }

  /** An input is active again; if downstream was told this operator is idle, it is told otherwise first. */
  private async activate(input: number): Promise<void> {
    this.watermarks.markActive(input);
    if (!this.signalledIdle) return;
    this.signalledIdle = false;
    await this.sendStatus({ kind: 'active' });
  }

  private async sendStatus(element: Element): Promise<void> {
    for (const d of this.downstream) await d.runner.push(d.input, element);
  }

  private keyed(record: StreamRecord<unknown>): StreamRecord<unknown> {
    const selector = this.keySelector as (value: unknown) => unknown;
    try {
      return { value: record.value, timestamp: record.timestamp, key: selector(record.value) };
    } catch (error) {
      throw locateError(error, {
        operator: this.uid,
        subtask: this.hooks.subtaskIndex ?? 0,
        record: recordLocationOf(record.value, record.key),
      });
    }
  }

  private async advanceWatermark(watermark: number): Promise<void> {
    await this.operator.onWatermark?.(watermark, this.output);
    await this.hooks.flushDeadLetters?.();
    await this.flushOutput();
    this.hooks.watermarkAdvanced(this.uid, watermark);
    for (const d of this.downstream) await d.runner.push(d.input, { kind: 'watermark', timestamp: watermark });
  }

  private async flushOutput(): Promise<void> {
    const { main, side } = this.output.take();
    if (main.length > 0) this.hooks.recordsOut(this.uid, main.length);
    const ts = this.batchSourceTs ?? this.sourceFrontier;
    const sourceTs = ts === undefined ? {} : { sourceTs: ts };
    for (const d of this.downstream) {
      const records = d.sideOutput === undefined ? main : side.get(d.sideOutput);
      if (records !== undefined && records.length > 0)
        await d.runner.push(d.input, { kind: 'batch', records, ...sourceTs });
    }
  }
}
