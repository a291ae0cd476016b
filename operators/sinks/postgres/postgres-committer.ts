/**
 * The Postgres side of the two-phase-commit contract. Records are buffered by primary key
 * (pending-changes.ts) and written into the open transaction (postgres-transaction.ts) in
 * multi-row statements when the buffer fills and at the barrier, on the writer session
 * (postgres-sessions.ts).
 *
 * Two-phase mode: at the barrier the transaction is PREPAREd and the writer session starts the
 * next one (Postgres detaches a prepared transaction from its session, so no new connection is
 * needed); COMMIT / ROLLBACK PREPARED run on a second, control session.
 *
 * Row locks: a prepared transaction keeps the locks of the rows it wrote until COMMIT PREPARED,
 * which only comes when its checkpoint completes — and the commit is delivered by the same task
 * loop that writes. A write to such a row would wait for a commit that cannot come (after an
 * aborted checkpoint, the commit waits for the *next* checkpoint). So a change whose key is held
 * by one of our uncommitted prepared transactions stays in the buffer: it is written once that
 * transaction commits, and if a barrier comes first it is carried in the checkpoint handle
 * (`deferred`) so a restore puts it back in the buffer. Only the newest handle's `deferred`
 * counts: each barrier records everything still unwritten.
 */
import { randomUUID } from 'node:crypto';
import { lineLogger, loggerFor } from '../../logger.ts';
import type { OperatorContext, StreamRecord } from '../../operator.ts';
import { SinkMetrics } from '../sink-metrics.ts';
import { IllegalTransactionTransitionError, SinkTransaction } from '../sink-transaction-state.ts';
import { sinkInstanceName, type SinkIdentity, type TwoPhaseCommitter } from '../two-phase-commit.ts';
import { changeMapper } from './change-mapping.ts';
import { checkFenceInTransaction, claimFence, currentEpoch } from './epoch-fence.ts';
import { epochOfCheckpointId, OwnershipLostError, ownerEpochOf, type OwnerEpoch } from '../owner-epoch.ts';
import type { CommitOutcome, PreparedTransactions } from './prepared-transactions.ts';
import { PendingChanges } from './pending-changes.ts';
import type { ResolvedPostgresSinkOptions } from './postgres-options.ts';
import { PostgresSessions, type Connected } from './postgres-sessions.ts';
import { PostgresTransaction } from './postgres-transaction.ts';
import { PostgresSinkError } from './pg-session.ts';
import { RefusalProbe } from './refusal-probe.ts';
import { RowRefusals } from './row-refusals.ts';
import type { KeyedChange } from './table-writer.ts';

/** The checkpoint handle (JSON). `gid` is null when the checkpoint wrote nothing (or in idempotent mode). */
export interface PostgresTxn {
  readonly checkpointId: number;
  readonly gid: string | null;
  readonly nonce?: string;
  /** Buffered changes not yet written anywhere at this barrier (keys held by uncommitted transactions). */
  readonly deferred?: readonly KeyedChange[];
}

/** How long a commit that found its transaction gone waits for a newer owner's epoch to appear. */
const EPOCH_RAISE_WAIT_MS = 10_000;

export class PostgresCommitter<T> implements TwoPhaseCommitter<T, PostgresTxn> {
  private readonly instance: string;
  /** Group mode: the partition task's owner epoch; the epoch fence replaces the instance's advisory lock (epoch-fence.ts). */
  private readonly ownerEpoch: OwnerEpoch | undefined;
  private readonly toKeyed: (value: T) => KeyedChange;
  private readonly metrics: SinkMetrics;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private readonly sessions: PostgresSessions;
  private readonly refusals: RowRefusals;
  private readonly pending: PendingChanges;
  /**
   * The transaction being written (BEGIN is sent with the first write of a checkpoint, so a
   * checkpoint without records prepares nothing). `aborted` here means it was lost with the
   * writer's connection: its writes are gone and only a restore can redo them.
   */
  private open: PostgresTransaction | undefined;
  /** The transaction opened next starts under savepoints: the last one had refused rows. */
  private guardNext = false;
  /** Our prepared, not yet committed transactions by checkpoint: for row locks and metrics. */
  private readonly uncommitted = new Map<number, PostgresTransaction>();
  private lastPreCommitted = 0;
  private lastCommitted = 0;

  constructor(
    private readonly o: ResolvedPostgresSinkOptions<T>,
    identity: SinkIdentity,
    context: OperatorContext,
  ) {
    this.instance = sinkInstanceName(identity);
    this.ownerEpoch = ownerEpochOf(identity.jobName);
    this.toKeyed = changeMapper(o.primaryKey, o.toChange, o.columns);
    this.metrics = new SinkMetrics(context.metrics, 'postgres');
    this.now = () => context.now();
    this.log =
      o.log ??
      lineLogger(
        loggerFor({ job: identity.jobName, uid: identity.sinkUid, subtask: identity.subtaskIndex }).child({
          sink: 'postgres',
        }),
      );
    this.refusals = new RowRefusals(o.table, context.uid, context.deadLetters, o.onRefused);
    this.pending = new PendingChanges(o.flushRows, o.positionColumn !== undefined);
    this.sessions = new PostgresSessions(
      o,
      this.instance,
      this,
      new RefusalProbe(this.log),
      this.log,
      () => this.writerLost(),
      this.ownerEpoch?.epoch,
    );
  }

  beginTransaction(): Promise<void> {
    // One still open would carry this checkpoint's writes into the next one's transaction.
    if (this.open?.state === 'open')
      return Promise.reject(new IllegalTransactionTransitionError(this.open.name, 'open', 'open'));
    return Promise.resolve();
  }

  async write(records: readonly StreamRecord<T>[]): Promise<void> {
    const now = this.now();
    for (const { value } of records) {
      let change: KeyedChange;
      try {
        change = this.toKeyed(value);
      } catch (error) {
        // The record cannot be mapped onto the table (no key values, not a table change): it would fail every retry.
        if (!(error instanceof PostgresSinkError) || error.retriable) throw error;
        this.refusals.one({ reason: error.message, error, value });
        continue;
      }
      this.pending.add(change, now);
    }
    this.pending.noteArrivals(records.length);
    if (this.pending.full || this.pending.due(now, this.o.flushIntervalMs)) await this.flush();
  }

  async preCommit(checkpointId: number): Promise<PostgresTxn> {
    const preCommitAt = this.now();
    const { writer, prepared } = await this.sessions.connect();
    await this.flush();
    this.throwIfTransactionLost();
    this.pending.barrier();
    this.lastPreCommitted = checkpointId;
    // Cleared only once it left `open`: if COMMIT or PREPARE fails, close() still rolls it back.
    const txn = this.open;
    this.guardNext = txn?.hadRefusals === true;
    if (this.o.mode === 'idempotent') {
      if (txn !== undefined) {
        await txn.commitNow(writer);
        this.open = undefined;
        this.recordVisible(preCommitAt, txn.changes, txn.sourceTs);
        this.o.onTransaction?.({ phase: 'committed', checkpointId, records: txn.keys.size });
      }
      return { checkpointId, gid: null };
    }
    const deferred = this.pending.size === 0 ? {} : { deferred: this.pending.values() };
    if (txn === undefined) return { checkpointId, gid: null, ...deferred };
    // Group mode: a process that lost the partition must not prepare for it (the open transaction is rolled back on close).
    if (this.ownerEpoch !== undefined)
      await checkFenceInTransaction(writer, this.instance, this.ownerEpoch, checkpointId);
    const nonce = randomUUID();
    const marker = prepared.markerStatement(checkpointId, nonce);
    await writer.query(marker.sql, marker.params);
    const gid = prepared.gid(checkpointId);
    await txn.prepare(writer, gid, preCommitAt);
    this.open = undefined;
    this.uncommitted.set(checkpointId, txn);
    this.o.onTransaction?.({ phase: 'prepared', checkpointId, records: txn.keys.size });
    return { checkpointId, gid, nonce, ...deferred };
  }

  async commit(txn: PostgresTxn): Promise<void> {
    if (txn.gid === null || txn.nonce === undefined) {
      this.lastCommitted = Math.max(this.lastCommitted, txn.checkpointId);
      return;
    }
    const { prepared } = await this.sessions.connect();
    const held = this.uncommitted.get(txn.checkpointId);
    const outcome = await this.commitPrepared(prepared, txn);
    // A transaction prepared by an earlier process (committed by a restore) is not held here.
    if (held !== undefined) {
      held.committed();
      this.recordVisible(held.preCommitAt, held.changes, held.sourceTs);
    }
    if (outcome === 'already-committed') this.metrics.count('cdcflow_sink_commits_repeated_total');
    this.uncommitted.delete(txn.checkpointId);
    this.lastCommitted = Math.max(this.lastCommitted, txn.checkpointId);
    this.o.onTransaction?.({ phase: 'committed', checkpointId: txn.checkpointId, records: held?.keys.size ?? 0 });
    await prepared.pruneMarkers(txn.checkpointId);
  }

  /** Group mode: transactions of checkpoints in a newer owner epoch's id range are not ours to roll back. */
  private readonly newerOwners = (checkpointId: number): boolean =>
    this.ownerEpoch !== undefined && epochOfCheckpointId(checkpointId) > this.ownerEpoch.epoch;

  /**
   * COMMIT PREPARED of one of our checkpoints. In group mode a newer owner's claim rolls back what
   * an older owner prepared for checkpoints its restore point does not cover; if that is why our
   * transaction is gone, the checkpoint is void (the new owner replays its records from its own
   * restore point): an ownership loss, not lost data.
   */
  private async commitPrepared(prepared: PreparedTransactions, txn: PostgresTxn): Promise<CommitOutcome> {
    try {
      return await prepared.commit(txn.checkpointId, txn.nonce as string);
    } catch (error) {
      const owner = this.ownerEpoch;
      if (owner === undefined || !(error instanceof PostgresSinkError) || error.retriable) throw error;
      // The claimant rolls back first and raises the epoch just after (epoch-fence.ts): give it time.
      const { control } = await this.sessions.connect();
      const deadline = Date.now() + EPOCH_RAISE_WAIT_MS;
      for (;;) {
        const newer = await currentEpoch(control, this.instance);
        if (newer !== undefined && newer > owner.epoch)
          throw new OwnershipLostError(this.instance, owner.epoch, newer, { cause: error });
        if (Date.now() >= deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  async recover(committed: readonly PostgresTxn[]): Promise<void> {
    const { prepared, control } = await this.sessions.connect();
    const owner = this.ownerEpoch;
    if (owner !== undefined) {
      // A stale owner (paused while it restored) must not touch a newer owner's transactions.
      const newer = await currentEpoch(control, this.instance);
      if (newer !== undefined && newer > owner.epoch) {
        // The runtime does not close an operator whose open failed: close our sessions here.
        await this.close();
        throw new OwnershipLostError(this.instance, owner.epoch, newer);
      }
    }
    for (const handle of committed) {
      if (handle.gid === null || handle.nonce === undefined) continue;
      const txn = SinkTransaction.adopt(handle.gid);
      const outcome = await prepared.commit(handle.checkpointId, handle.nonce);
      txn.moveTo('recovered');
      this.log(`restore: ${outcome === 'committed' ? 'committed' : 'found already committed'} ${handle.gid}`);
    }
    // Prepared by checkpoints that never completed: pre-committed → aborted.
    const rolledBack = await prepared.rollbackAllExcept(
      new Set(committed.flatMap((t) => (t.gid === null ? [] : [t.gid]))),
      this.newerOwners,
    );
    if (rolledBack.length > 0) {
      this.log(
        `restore: rolled back ${rolledBack.length} prepared transaction(s) of checkpoints that did not complete: ${rolledBack.join(', ')}`,
      );
      this.metrics.count('cdcflow_sink_rolled_back_total', rolledBack.length);
    }
    if (this.o.mode === 'two-phase' && this.ownerEpoch !== undefined)
      await this.claimEpoch(prepared, committed, this.ownerEpoch);
    this.pending.replaceWith(committed.at(-1)?.deferred ?? []);
  }

  /** Raises the fence to our epoch; an older owner that prepared after our rollback is rolled back again (epoch-fence.ts). */
  private async claimEpoch(
    prepared: PreparedTransactions,
    committed: readonly PostgresTxn[],
    owner: OwnerEpoch,
  ): Promise<void> {
    const { control } = await this.sessions.connect();
    const keep = new Set(committed.flatMap((t) => (t.gid === null ? [] : [t.gid])));
    for (let attempt = 1; ; attempt++) {
      if (await claimFence(control, this.instance, owner, 1000)) {
        this.log(`claimed owner epoch ${owner.epoch} of ${this.instance}`);
        return;
      }
      if (attempt >= 30)
        throw new PostgresSinkError(
          `could not claim owner epoch ${owner.epoch} of ${this.instance}: an older owner's prepared transaction kept its fence locked for 30 s`,
          '55P03',
          { retriable: true },
        );
      const rolledBack = await prepared.rollbackAllExcept(keep, this.newerOwners);
      if (rolledBack.length > 0) this.log(`claim: rolled back ${rolledBack.join(', ')} (prepared by an older owner)`);
    }
  }

  async leftovers(): Promise<readonly { name: string; checkpointId: number | undefined }[]> {
    if (this.o.mode !== 'two-phase') return [];
    const { prepared } = await this.sessions.connect();
    return prepared.leftoversOfSink();
  }

  async discardLeftovers(): Promise<void> {
    if (this.o.mode !== 'two-phase') return;
    const { prepared } = await this.sessions.connect();
    const rolledBack = await prepared.rollbackAllOfSink();
    if (rolledBack.length > 0)
      this.log(
        `fresh start with discardSinkTransactions: rolled back ${rolledBack.length} prepared transaction(s): ${rolledBack.join(', ')}`,
      );
  }

  async close(): Promise<void> {
    await this.sessions.close(async (c) => {
      const open = this.open;
      if (open?.state === 'open') {
        await c.writer.query('ROLLBACK');
        open.aborted();
      }
      await this.writeCoveredRest(c);
    });
  }

  /**
   * A bounded job ends with a final checkpoint; changes it had to defer are covered by it but
   * would wait for a checkpoint that never comes. If nothing arrived after that barrier and it
   * committed, they are safe to commit now (a restore from it would write them again, equally).
   */
  private async writeCoveredRest(c: Connected): Promise<void> {
    if (this.pending.size === 0) return;
    const covered =
      this.o.mode === 'two-phase' &&
      !this.pending.arrivedSinceBarrier &&
      this.uncommitted.size === 0 &&
      this.lastCommitted >= this.lastPreCommitted;
    if (!covered) return;
    const rest = this.pending.values();
    await c.writer.query('BEGIN');
    this.refusals.all(await c.table.apply(c.writer, rest));
    await c.writer.query('COMMIT');
    this.metrics.visible(
      rest.flatMap((change) => (change.sourceTsMs === undefined ? [] : [change.sourceTsMs])),
      this.now(),
      rest.length,
    );
    this.pending.clear();
  }

  /** Writes every buffered change whose key no uncommitted prepared transaction holds. */
  private async flush(): Promise<void> {
    const writable = this.pending.takeWritable((keyId) => this.isHeld(keyId));
    if (writable.length === 0) return;
    const { writer, table, screen } = await this.sessions.connect();
    this.throwIfTransactionLost();
    // Rows with a value the table would refuse leave before the write: a refusal on the bare path
    // costs the rewrite of the whole open transaction.
    const { accepted, refused } = await screen.screen(async () => (await this.sessions.connect()).control, writable);
    if (refused.length > 0) this.metrics.count('cdcflow_postgres_sink_screened_out_total', refused.length);
    this.refusals.all(refused);
    if (accepted.length === 0) return;
    this.open ??= await PostgresTransaction.begin(
      writer,
      `of ${this.instance} after checkpoint ${this.lastPreCommitted}`,
      this.guardNext,
    );
    await this.open.write(writer, table, accepted, this.refusals, this.metrics);
  }

  private isHeld(keyId: string): boolean {
    for (const { keys } of this.uncommitted.values()) if (keys.has(keyId)) return true;
    return false;
  }

  /** A transaction's changes just became visible (its COMMIT or COMMIT PREPARED returned). */
  private recordVisible(preCommitAt: number | undefined, changes: number, sourceTs: readonly number[]): void {
    const now = this.now();
    this.metrics.visible(sourceTs, now, changes);
    this.metrics.committed(preCommitAt, now);
  }

  /** The writer's connection dropped while a transaction was open (postgres-sessions.ts). */
  private writerLost(): void {
    if (this.open?.state === 'open') this.open.aborted();
  }

  private throwIfTransactionLost(): void {
    if (this.open?.state !== 'aborted') return;
    throw new PostgresSinkError(
      `the connection to Postgres dropped with a transaction open (writes since checkpoint ${this.lastPreCommitted}): they are gone; the job restores from the latest checkpoint and writes them again`,
      undefined,
      { retriable: true },
    );
  }
}
