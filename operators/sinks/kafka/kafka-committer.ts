/**
 * The two-phase committer behind `kafkaSink`: one Kafka transaction per checkpoint.
 *
 *   beginTransaction → InitProducerId on the lowest free slot's transactional id (new epoch);
 *   write            → records sent inside it (invisible to read_committed consumers);
 *   preCommit(n)     → await every send; the handle (id, producer id, epoch) goes into checkpoint n;
 *   commit(handle)   → EndTxn(commit) with the handle's producer id and epoch;
 *   recover(handles) → EndTxn(commit) for each recorded handle, *then* InitProducerId on every
 *                      slot, oldest first, which aborts the leftovers and fences zombies.
 *
 * A slot holding a prepared transaction is never reused before that transaction commits, and
 * every transaction starts on a fresh epoch: so a stored handle can only ever commit the
 * transaction it was taken from. See docs/kafka-sink-transactions.md.
 */
import type { OperatorContext, StreamRecord } from '../../operator.ts';
import { SinkMetrics } from '../sink-metrics.ts';
import { SinkTransaction } from '../sink-transaction-state.ts';
import type { SinkIdentity, SinkLeftover, TwoPhaseCommitter } from '../two-phase-commit.ts';
import { InternalClient, type TopicMessages } from './kafkajs-internals.ts';
import { KafkaSinkError } from './kafka-sink-error.ts';
import { OpenTransaction } from './open-transaction.ts';
import { TransactionControl, type KafkaTransactionHandle } from './transaction-control.ts';
import { transactionalId, transactionalIdPattern } from './transactional-id.ts';
import { listTransactions } from './list-transactions.ts';
import {
  fateAfterSuccessor,
  OwnershipLostError,
  ownerEpochOf,
  type OwnerEpoch,
  type SuccessorClaim,
} from '../owner-epoch.ts';
import type { KafkaSinkMessage, ResolvedKafkaSinkOptions } from './kafka-sink-options.ts';
import { RECORD_BATCH_OVERHEAD_BYTES, TopicLimits, invalidMessage, messageBytes } from './record-screen.ts';
import { messageOf, originOfValue } from '../../record-dead-letters.ts';

interface PreparedTransaction {
  readonly handle: KafkaTransactionHandle;
  readonly lifecycle: SinkTransaction;
  readonly sourceTs: readonly number[];
  readonly preCommitAt: number;
  readonly checkpointId: number;
}

export class KafkaCommitter<T> implements TwoPhaseCommitter<T, KafkaTransactionHandle> {
  private readonly client: InternalClient;
  private readonly control: TransactionControl;
  /** The transaction being filled (`open`); it leaves this field when pre-committed. */
  private open: OpenTransaction | undefined;
  /** Slots whose transaction is pre-committed and not yet committed, with source times for metrics. */
  private readonly prepared = new Map<number, PreparedTransaction>();
  /** For metrics: source times of the open transaction's records. */
  private openSourceTs: number[] = [];
  private readonly metrics: SinkMetrics;
  /** Slots are taken round-robin, so recovery can tell in which order leftovers began. */
  private nextSlot = 0;
  private readonly limits: TopicLimits;
  /** Group mode: the partition task's claim, registered before its pipeline opens (owner-epoch.ts). */
  private readonly ownerEpoch: OwnerEpoch | undefined;

  constructor(
    private readonly identity: SinkIdentity,
    private readonly context: OperatorContext,
    private readonly options: ResolvedKafkaSinkOptions<T>,
  ) {
    this.client = new InternalClient({
      connection: options.connection,
      clientId: `cdcflow-${options.transactionalIdPrefix ?? identity.jobName}-${identity.sinkUid}-${identity.subtaskIndex}`,
      transactionTimeoutMs: options.transactionTimeoutMs,
    });
    this.control = new TransactionControl(this.client, { transactionTimeoutMs: options.transactionTimeoutMs });
    this.metrics = new SinkMetrics(context.metrics, 'kafka');
    this.limits = new TopicLimits(options.connection);
    this.ownerEpoch = ownerEpochOf(identity.jobName);
  }

  async beginTransaction(): Promise<void> {
    // An empty transaction carries over: no epoch bump, no coordinator round trip while idle.
    if (this.open !== undefined) return;
    // Group mode: a process that lost the partition (paused past its session) must not start
    // writing again; the claims know before any Kafka fence could.
    const successor = await this.successor();
    if (successor !== undefined) throw await this.yieldTo(successor);
    const slot = this.freeSlot();
    this.open = await OpenTransaction.begin(this.client, slot, this.idOf(slot));
    this.openSourceTs = [];
  }

  /**
   * Sends the records into the open transaction. A record the broker would refuse (it cannot be
   * serialised, or is over its topic's `max.message.bytes`) never enters it: the broker would fail
   * the whole transaction. `onRefused` takes it instead. Sends are split so that no partition's
   * record batch can exceed its topic's limit.
   */
  async write(records: readonly StreamRecord<T>[]): Promise<void> {
    const open = this.requireOpen();
    let byTopic = new Map<string, TopicMessages & { bytes: number }>();
    let count = 0;
    const sends: { topicMessages: TopicMessages[]; count: number }[] = [];
    for (const { value } of records) {
      let message: KafkaSinkMessage;
      try {
        message = this.options.serialize(value);
      } catch (error) {
        this.refuse(`serialize threw: ${messageOf(error)}`, error, value);
        continue;
      }
      const invalid = invalidMessage(message);
      if (invalid !== undefined) {
        this.refuse(invalid, undefined, value);
        continue;
      }
      const topic = message.topic ?? this.options.topic;
      const limit = (await this.limits.of(topic)) - RECORD_BATCH_OVERHEAD_BYTES;
      const bytes = messageBytes(message);
      if (bytes > limit) {
        this.refuse(
          `the record (${bytes} bytes) is over max.message.bytes of topic ${topic} (${limit + RECORD_BATCH_OVERHEAD_BYTES})`,
          undefined,
          value,
        );
        continue;
      }
      if (message.sourceTsMs !== undefined) this.openSourceTs.push(message.sourceTsMs);
      let group = byTopic.get(topic);
      if (group !== undefined && group.bytes + bytes > limit) {
        sends.push({ topicMessages: [...byTopic.values()], count });
        byTopic = new Map();
        count = 0;
        group = undefined;
      }
      if (group === undefined) byTopic.set(topic, (group = { topic, messages: [], bytes: 0 }));
      group.bytes += bytes;
      count++;
      group.messages.push({
        key: message.key,
        value: message.value,
        ...(message.headers === undefined ? {} : { headers: { ...message.headers } }),
        ...(message.partition === undefined ? {} : { partition: message.partition }),
      });
    }
    if (byTopic.size > 0) sends.push({ topicMessages: [...byTopic.values()], count });
    for (const send of sends)
      await open.send(
        send.topicMessages.map(({ topic, messages }) => ({ topic, messages })),
        send.count,
        this.options.maxQueuedBatches,
      );
  }

  /** A record the broker would refuse whatever the retry: the sink's policy takes it. */
  private refuse(reason: string, error: unknown, value: T): void {
    const origin = originOfValue(value);
    const deadLetters = this.context.deadLetters;
    if (deadLetters === undefined) {
      throw new KafkaSinkError(`kafkaSink ${this.identity.sinkUid}: ${reason}`, {
        domain: 'user',
        retriable: false,
        ...(error === undefined ? {} : { cause: error }),
      });
    }
    deadLetters.reject(
      {
        kind: 'sink-refused',
        reason: `kafkaSink: ${reason}`,
        error: error ?? new KafkaSinkError(reason, { domain: 'user', retriable: false }),
        value,
        ...(origin === undefined ? {} : { origin }),
      },
      this.options.onRefused,
    );
  }

  async preCommit(checkpointId: number): Promise<KafkaTransactionHandle> {
    const open = this.requireOpen();
    const preCommitAt = this.context.now();
    const handle = await open.preCommit(this.context.now());
    if (open.state === 'pre-committed') {
      this.prepared.set(open.slot, {
        handle,
        lifecycle: open.lifecycle,
        sourceTs: this.openSourceTs,
        preCommitAt,
        checkpointId,
      });
      this.openSourceTs = [];
      this.open = undefined;
      this.options.onTransaction?.({ phase: 'prepared', checkpointId, records: handle.records });
    }
    return handle;
  }

  async commit(handle: KafkaTransactionHandle, checkpointId: number): Promise<void> {
    if (handle.records === 0) return;
    // Group mode, a newer owner exists: commit only what it restored (it commits the same), abort
    // a void checkpoint's transaction (it replays those records; committed they would be written
    // twice, left open they would hold back read_committed readers until the transaction timeout).
    const successor = await this.successor();
    if (successor !== undefined) {
      if (fateAfterSuccessor(checkpointId, successor) !== 'commit') {
        if (fateAfterSuccessor(checkpointId, successor) === 'abort') await this.control.fence(handle.transactionalId);
        throw await this.yieldTo(successor);
      }
    }
    const started = this.context.now();
    const outcome = await this.control.commit(handle);
    this.context.metrics.count('cdcflow_kafka_sink_commits_total', { outcome });
    this.context.metrics.gauge('cdcflow_kafka_sink_commit_latency_ms', this.context.now() - started);
    // A handle of an earlier epoch on this slot (committed before) leaves the slot's current one alone.
    const prepared = this.prepared.get(handle.slot);
    if (prepared?.handle.producerId === handle.producerId && prepared.handle.producerEpoch === handle.producerEpoch) {
      prepared.lifecycle.moveTo('committed');
      const now = this.context.now();
      this.metrics.visible(prepared.sourceTs, now, handle.records);
      this.metrics.committed(prepared.preCommitAt, now);
      this.prepared.delete(handle.slot);
    }
    this.options.onTransaction?.({ phase: 'committed', checkpointId, records: handle.records });
  }

  async recover(committed: readonly KafkaTransactionHandle[]): Promise<void> {
    for (const handle of committed) {
      if (handle.records === 0) continue;
      const name = `${handle.transactionalId} (producer ${handle.producerId}, epoch ${handle.producerEpoch}, ${handle.records} records)`;
      this.options.log(`restore: committing recorded transaction ${name}`);
      const txn = SinkTransaction.adopt(name);
      const outcome = await this.control.commit(handle);
      // Superseded means committed before, unless the broker expired it (counted below).
      txn.moveTo('recovered');
      this.options.log(
        `restore: ${outcome === 'committed' ? 'committed' : 'found superseded (committed before)'} ${name}`,
      );
      this.context.metrics.count('cdcflow_kafka_sink_recovered_total', { outcome });
      if (outcome === 'superseded' && this.context.now() - handle.preparedAtMs > this.options.transactionTimeoutMs) {
        // The broker may have aborted it on transaction.timeout.ms before we got back: possible loss.
        this.context.metrics.count('cdcflow_kafka_sink_transactions_possibly_expired_total', {}, handle.records);
      }
    }
    // Only now, with every recorded transaction committed, may the ids get new epochs. One at a
    // time, oldest leftover first: kafkajs read_committed consumers drop aborted records only
    // when abort markers come in the order the transactions began (see the docs).
    // The newest handle's slot comes next, unless it was still empty (open) at the snapshot.
    const last = committed.at(-1);
    const slots = this.options.maxTransactionSlots;
    const first = last === undefined ? 0 : (last.slot + (last.records === 0 ? 0 : 1)) % slots;
    await this.fenceOlderEpochs();
    for (let i = 0; i < slots; i++) await this.control.fence(this.idOf((first + i) % slots));
    this.options.log(
      `restore: fenced ${slots} transactional ids from slot ${first} on (their open transactions aborted)`,
    );
    // Fencing aborted whatever each id had open; this committer starts with no transaction.
    this.prepared.clear();
    this.open = undefined;
    this.nextSlot = first;
  }

  /**
   * Open transactions (broker state `Ongoing`) on any transactional id of this sink, every subtask
   * and slot. Kafka does not know which checkpoint a transaction belongs to, so each is reported
   * without one (a fresh start refuses them all). Empty if the brokers predate ListTransactions.
   */
  async leftovers(): Promise<readonly SinkLeftover[]> {
    return (await this.openTransactionIds()).map((id) => ({
      name: `kafka open transaction '${id}'`,
      checkpointId: undefined,
    }));
  }

  /** Aborts them: InitProducerId on each id, as a restore does (it also fences their producers). */
  async discardLeftovers(): Promise<void> {
    for (const id of await this.openTransactionIds()) {
      this.options.log(`fresh start: aborting open transaction '${id}' (discardSinkTransactions)`);
      await this.control.fence(id);
    }
  }

  private async openTransactionIds(): Promise<string[]> {
    await this.client.connect();
    const listed = await listTransactions(this.client.cluster, ['Ongoing']);
    if (listed === undefined) {
      this.options.log(
        'fresh start: the brokers do not support ListTransactions (Kafka < 3.0); open transactions of this sink were not checked',
      );
      return [];
    }
    const ours = transactionalIdPattern(this.identity, this.options.transactionalIdPrefix);
    // Oldest slot first within a subtask, as recover() aborts them (kafkajs read_committed ordering).
    return listed
      .map((t) => ({ id: t.transactionalId, groups: ours.exec(t.transactionalId)?.groups }))
      .filter((t) => t.groups !== undefined)
      .sort(
        (a, b) =>
          Number(a.groups?.['subtask']) - Number(b.groups?.['subtask']) ||
          Number(a.groups?.['slot']) - Number(b.groups?.['slot']),
      )
      .map((t) => t.id);
  }

  async close(): Promise<void> {
    // Whatever is still open or prepared is resolved by the next recover(): committed if a
    // completed checkpoint recorded it, aborted (fenced) otherwise.
    this.open = undefined;
    await this.client.disconnect();
  }

  private freeSlot(): number {
    const slots = this.options.maxTransactionSlots;
    for (let i = 0; i < slots; i++) {
      const slot = (this.nextSlot + i) % slots;
      if (this.prepared.has(slot)) continue;
      this.nextSlot = (slot + 1) % slots;
      return slot;
    }
    throw new KafkaSinkError(
      `${this.prepared.size} Kafka transactions of sink '${this.identity.sinkUid}' are prepared and none committed: checkpoints keep failing to complete; raise maxTransactionSlots or fix the checkpoint failures`,
      { retriable: true },
    );
  }

  private requireOpen(): OpenTransaction {
    if (this.open === undefined)
      throw new KafkaSinkError('no open Kafka transaction: beginTransaction() must run first', { domain: 'internal' });
    return this.open;
  }

  private idOf(slot: number): string {
    return transactionalId(this.identity, slot, this.options.transactionalIdPrefix, this.ownerEpoch?.epoch);
  }

  private async successor(): Promise<SuccessorClaim | undefined> {
    return this.ownerEpoch?.successor?.();
  }

  private ownershipLost(successor: SuccessorClaim): OwnershipLostError {
    return new OwnershipLostError(
      `${this.identity.jobName}/${this.identity.sinkUid}#${this.identity.subtaskIndex}`,
      this.ownerEpoch?.epoch ?? 0,
      successor.epoch,
    );
  }

  /**
   * A newer owner exists: settle what this committer still holds so nothing of ours stays open on
   * the topic (an open transaction holds back every read_committed reader of its partitions until
   * the transaction timeout), then the error that drops the task. The transaction being filled was
   * never part of a completed checkpoint: aborted. A prepared one goes as its checkpoint's fate says.
   */
  private async yieldTo(successor: SuccessorClaim): Promise<OwnershipLostError> {
    const open = this.open;
    this.open = undefined;
    if (open !== undefined) await this.control.fence(open.transactionalId);
    for (const [slot, prepared] of [...this.prepared]) {
      const fate = fateAfterSuccessor(prepared.checkpointId, successor);
      if (fate === 'commit') await this.control.commit(prepared.handle);
      else if (fate === 'abort') await this.control.fence(prepared.handle.transactionalId);
      this.prepared.delete(slot);
    }
    return this.ownershipLost(successor);
  }

  /**
   * Group mode: aborts what older owners of this partition left open on their own ids (a killed
   * owner's transaction, a paused one's that it may still try to commit), oldest epoch first, so
   * read_committed readers downstream are not held back until the transaction timeout.
   */
  private async fenceOlderEpochs(): Promise<void> {
    const epoch = this.ownerEpoch?.epoch;
    if (epoch === undefined) return;
    const ours = transactionalIdPattern(this.identity, this.options.transactionalIdPrefix);
    const older = (await this.openTransactionIds())
      .map((id) => ({ id, groups: ours.exec(id)?.groups }))
      .filter((t) => Number(t.groups?.['subtask']) === this.identity.subtaskIndex)
      .filter((t) => t.groups?.['epoch'] === undefined || Number(t.groups['epoch']) < epoch)
      .sort((a, b) => Number(a.groups?.['epoch'] ?? 0) - Number(b.groups?.['epoch'] ?? 0));
    for (const { id } of older) {
      this.options.log(`restore: aborting transaction '${id}' left open by an older owner of this partition`);
      await this.control.fence(id);
    }
  }
}
