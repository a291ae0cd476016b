/**
 * The keyed exchange between subtasks: in front of every keyed operator, records go to the
 * subtask that owns their key group (`subtaskForKeyGroup`, the same arithmetic as the state
 * backend's ranges), over MessagePorts between worker threads, one batch per destination and
 * upstream batch. Watermarks, idleness, barriers and end-of-input are broadcast in-band on every
 * channel, so the keyed operator sees `inputs × parallelism` channels: it aligns barriers and
 * takes the minimum watermark over all of them (barrier-aligner.ts, watermark-holder.ts).
 *
 * Flow control is credit based: a sender may have `credits` batches unprocessed at a peer; the
 * peer returns a credit once it has pushed a batch through its operators. While a sender waits
 * for credit it keeps draining its own inbound channels, so two subtasks sending to each other
 * cannot deadlock. Inbound messages are only processed at points the task loop chooses (between
 * polls, while a poll waits, while waiting for credit), never concurrently with other work.
 */
import type { MessagePort } from 'node:worker_threads';
import { encodeKey, keyGroupFor, subtaskForKeyGroup } from '../../state/index.ts';
import type { StreamRecord } from '../../operators/operator.ts';
import type { Element, ElementReceiver, OperatorRunner } from '../execution/operator-runner.ts';
import { LoopStats } from './loop-stats.ts';
import type { ExchangeMessage } from './protocol.ts';

/**
 * Batches in flight per pair of subtasks and direction. Everything in flight sits in front of a
 * barrier at the receiver, so it is what barrier alignment waits for: measured at parallelism 2
 * (upsert bench), 8 credits of Kafka-sized batches gave checkpoints of 0.8–1.1 s median, 2 gave
 * ~0.3 s at the same throughput (the credit waits did not grow). See docs/parallel-execution.md.
 * @default 2
 */
export const DEFAULT_EXCHANGE_CREDITS = 2;

/** The most records one exchange message carries, so credits bound the records in flight, not just batches. */
export const EXCHANGE_BATCH_RECORDS = 512;

interface Inbound {
  readonly from: number;
  readonly message: Exclude<ExchangeMessage, { t: 'credit' }>;
}

export class KeyedExchange {
  private readonly targets = new Map<string, OperatorRunner>();
  private readonly credits: number[];
  private readonly inbound: Inbound[] = [];
  private wake: (() => void) | undefined;
  private arrived: Promise<void> | undefined;
  private aborted = false;
  readonly stats = new LoopStats();

  constructor(
    readonly subtaskIndex: number,
    readonly parallelism: number,
    private readonly peers: readonly (MessagePort | undefined)[],
    private readonly initialCredits = DEFAULT_EXCHANGE_CREDITS,
  ) {
    this.credits = peers.map(() => initialCredits);
    peers.forEach((port, from) => port?.on('message', (message: ExchangeMessage) => this.onMessage(from, message)));
  }

  /** The channel of `edgeInput` from subtask `from` at a keyed operator: `edgeInput * N + from`. */
  channel(edgeInput: number, from: number): number {
    return edgeInput * this.parallelism + from;
  }

  /** What the upstream of keyed operator `target` (graph node `nodeId`) pushes into, for input `edgeInput`. */
  sender(
    nodeId: number,
    edgeInput: number,
    keySelector: (value: unknown) => unknown,
    target: OperatorRunner,
  ): ElementReceiver {
    this.targets.set(`${nodeId}/${edgeInput}`, target);
    return new ExchangeSender(this, nodeId, edgeInput, keySelector, target);
  }

  /** Resolves when an inbound message is waiting (at once if one already is). */
  arrival(): Promise<void> {
    if (this.inbound.length > 0 || this.aborted) return Promise.resolve();
    this.arrived ??= new Promise<void>((resolve) => (this.wake = resolve));
    return this.arrived;
  }

  get pending(): number {
    return this.inbound.length;
  }

  /** Pushes every waiting inbound message into its operator, returning a credit per batch. */
  async drain(): Promise<void> {
    for (let message = this.inbound.shift(); message !== undefined; message = this.inbound.shift()) {
      await this.dispatch(message);
    }
  }

  /** Posts `message` to subtask `to`; a batch waits for credit first (draining inbound meanwhile). */
  async send(to: number, message: ExchangeMessage): Promise<void> {
    const port = this.peers[to] as MessagePort;
    if (message.t === 'batch') {
      const waitStart = performance.now();
      if ((this.credits[to] as number) <= 0) this.stats.count('creditWaits');
      while ((this.credits[to] as number) <= 0) {
        if (this.aborted)
          throw new Error(`gave up sending to subtask ${to}: another subtask failed and the attempt is restarting`);
        await this.arrival();
        await this.drain();
      }
      this.stats.add('creditWait', waitStart);
      this.credits[to] = (this.credits[to] as number) - 1;
      this.stats.count('sentRecords', message.records.length);
    }
    const postStart = performance.now();
    port.postMessage(message);
    this.stats.add(`post.${message.t}`, postStart);
  }

  close(): void {
    for (const port of this.peers) port?.close();
    this.abort();
  }

  /** Another subtask failed: a send waiting for its credit gives up (the peer may be gone). */
  abort(): void {
    this.aborted = true;
    const wake = this.wake;
    this.wake = undefined;
    this.arrived = undefined;
    wake?.();
  }

  private onMessage(from: number, message: ExchangeMessage): void {
    if (message.t === 'credit')
      this.credits[from] = Math.min(this.initialCredits, (this.credits[from] as number) + message.n);
    else this.inbound.push({ from, message });
    const wake = this.wake;
    this.wake = undefined;
    this.arrived = undefined;
    wake?.();
  }

  private async dispatch({ from, message }: Inbound): Promise<void> {
    const target = this.targets.get(`${message.node}/${message.input}`);
    if (target === undefined)
      throw new Error(
        `exchange message for unknown operator input ${message.node}/${message.input}: the subtasks built different graphs`,
      );
    const channel = this.channel(message.input, from);
    switch (message.t) {
      case 'batch': {
        const start = performance.now();
        await target.push(channel, {
          kind: 'batch',
          records: message.records,
          ...(message.sourceTs === undefined ? {} : { sourceTs: message.sourceTs }),
        });
        this.stats.add('inboundPush', start);
        this.stats.count('inboundRecords', message.records.length);
        (this.peers[from] as MessagePort).postMessage({ t: 'credit', n: 1 } satisfies ExchangeMessage);
        return;
      }
      case 'watermark':
        return target.push(channel, { kind: 'watermark', timestamp: message.timestamp });
      case 'idle':
      case 'active':
        return target.push(channel, { kind: message.t });
      case 'barrier':
        return target.pushBarrier(channel, message.checkpointId);
      case 'end':
        return target.endInput(channel);
    }
  }
}

/** Partitions one edge's elements by key group; the own share is pushed directly, first. */
class ExchangeSender implements ElementReceiver {
  private readonly local: number;

  constructor(
    private readonly exchange: KeyedExchange,
    private readonly node: number,
    private readonly input: number,
    private readonly keySelector: (value: unknown) => unknown,
    private readonly target: OperatorRunner,
  ) {
    this.local = exchange.channel(input, exchange.subtaskIndex);
  }

  async push(_input: number, element: Element): Promise<void> {
    if (element.kind !== 'batch') {
      await this.target.push(this.local, element);
      const message: ExchangeMessage =
        element.kind === 'watermark'
          ? { t: 'watermark', node: this.node, input: this.input, timestamp: element.timestamp }
          : { t: element.kind, node: this.node, input: this.input };
      return this.broadcast(message);
    }
    const { parallelism, subtaskIndex } = this.exchange;
    const parts: StreamRecord<unknown>[][] = Array.from({ length: parallelism }, () => []);
    for (const record of element.records) {
      const subtask = subtaskForKeyGroup(keyGroupFor(encodeKey(this.keySelector(record.value))), parallelism);
      (parts[subtask] as StreamRecord<unknown>[]).push(record);
    }
    const own = parts[subtaskIndex] as StreamRecord<unknown>[];
    const sourceTs = element.sourceTs === undefined ? {} : { sourceTs: element.sourceTs };
    if (own.length > 0) await this.target.push(this.local, { kind: 'batch', records: own, ...sourceTs });
    for (let to = 0; to < parallelism; to++) {
      const records = parts[to] as StreamRecord<unknown>[];
      if (to === subtaskIndex) continue;
      for (let at = 0; at < records.length; at += EXCHANGE_BATCH_RECORDS) {
        const chunk =
          records.length <= EXCHANGE_BATCH_RECORDS ? records : records.slice(at, at + EXCHANGE_BATCH_RECORDS);
        await this.exchange.send(to, { t: 'batch', node: this.node, input: this.input, records: chunk, ...sourceTs });
      }
    }
  }

  async pushBarrier(_input: number, checkpointId: number): Promise<void> {
    await this.target.pushBarrier(this.local, checkpointId);
    await this.broadcast({ t: 'barrier', node: this.node, input: this.input, checkpointId });
  }

  async endInput(_input: number): Promise<void> {
    // A finished channel must not hold back event time on the others (Flink: MAX_WATERMARK at end).
    await this.push(this.local, { kind: 'watermark', timestamp: Number.POSITIVE_INFINITY });
    await this.target.endInput(this.local);
    await this.broadcast({ t: 'end', node: this.node, input: this.input });
  }

  private async broadcast(message: ExchangeMessage): Promise<void> {
    for (let to = 0; to < this.exchange.parallelism; to++)
      if (to !== this.exchange.subtaskIndex) await this.exchange.send(to, message);
  }
}
