/**
 * One Kafka transaction being filled: a fresh InitProducerId (new epoch) on its slot's
 * transactional id, then sends chained one after another so records keep their order, with the
 * sink's batch processing running ahead of the broker by a bounded number of batches. It is
 * `open` until its pre-commit, then `pre-committed` until the committer commits it
 * (sink-transaction-state.ts); an empty one stays open and carries over to the next checkpoint.
 */
import { SinkTransaction, type SinkTransactionState } from '../sink-transaction-state.ts';
import type { EosManager, InternalClient, MessageProducer, TopicMessages } from './kafkajs-internals.ts';
import type { KafkaTransactionHandle } from './transaction-control.ts';

export class OpenTransaction {
  readonly lifecycle: SinkTransaction;
  private tail: Promise<void> = Promise.resolve();
  private queued: Promise<void>[] = [];
  private failure: { error: unknown } | undefined;
  private sent = 0;

  private constructor(
    readonly slot: number,
    readonly transactionalId: string,
    private readonly eos: EosManager,
    private readonly producer: MessageProducer,
  ) {
    this.lifecycle = SinkTransaction.open(transactionalId);
  }

  /**
   * InitProducerId fences every earlier holder of the id and aborts what it left open — which is
   * why a slot is only reused once its previous transaction committed.
   */
  static async begin(client: InternalClient, slot: number, transactionalId: string): Promise<OpenTransaction> {
    await client.connect();
    const { eos, producer } = client.transactional(transactionalId);
    await eos.initProducerId();
    eos.beginTransaction();
    return new OpenTransaction(slot, transactionalId, eos, producer);
  }

  get records(): number {
    return this.sent;
  }

  get state(): SinkTransactionState {
    return this.lifecycle.state;
  }

  /** Queues a send; waits only when more than `maxQueued` sends are still unacknowledged. */
  async send(topicMessages: TopicMessages[], count: number, maxQueued: number): Promise<void> {
    this.lifecycle.requireOpen();
    this.throwIfFailed();
    const next = this.tail.then(async () => {
      if (this.failure !== undefined) return;
      try {
        await this.producer.sendBatch({ acks: -1, topicMessages });
        this.sent += count;
      } catch (error) {
        this.failure = { error };
      }
    });
    this.tail = next;
    this.queued.push(next);
    while (this.queued.length > maxQueued) await this.queued.shift();
    this.throwIfFailed();
  }

  /**
   * The pre-commit: every send acknowledged by all in-sync replicas, or the first failure. With
   * records it is pre-committed (its handle goes into the checkpoint); without, it stays open.
   */
  async preCommit(now: number): Promise<KafkaTransactionHandle> {
    this.lifecycle.requireOpen();
    await this.tail;
    this.queued = [];
    this.throwIfFailed();
    if (this.sent > 0) this.lifecycle.moveTo('pre-committed');
    return {
      transactionalId: this.transactionalId,
      slot: this.slot,
      producerId: String(this.eos.getProducerId()),
      producerEpoch: this.eos.getProducerEpoch(),
      records: this.sent,
      preparedAtMs: now,
    };
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure.error;
  }
}
