/**
 * The Postgres side of the two-phase-commit contract. Records are buffered by primary key (the
 * latest change per key wins) and written into the open transaction in multi-row statements when
 * the buffer fills and at the barrier.
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
import { sinkInstanceName, type SinkIdentity, type TwoPhaseCommitter } from '../two-phase-commit.ts';
import { changeMapper } from './change-mapping.ts';
import type { ResolvedPostgresSinkOptions } from './postgres-options.ts';
import { PostgresSinkError, sqlStateOf, type PgSession } from './pg-session.ts';
import { takeInstanceFence } from './instance-fence.ts';
import { checkFenceInTransaction, claimFence, ensureFenceTables } from './epoch-fence.ts';
import { ownerEpochOf, type OwnerEpoch } from '../owner-epoch.ts';
import { PreparedTransactions } from './prepared-transactions.ts';
import { quoteLiteral } from './sql.ts';
import type { RecordDeadLetters } from '../../record-dead-letters.ts';
import { RefusalProbe } from './refusal-probe.ts';
import { RowScreen } from './row-screen.ts';
import { TableWriter, isRowRefusal, type KeyedChange, type RefusedChange } from './table-writer.ts';

/** The checkpoint handle (JSON). `gid` is null when the checkpoint wrote nothing (or in idempotent mode). */
export interface PostgresTxn {
  readonly checkpointId: number;
  readonly gid: string | null;
  readonly nonce?: string;
  /** Buffered changes not yet written anywhere at this barrier (keys held by uncommitted transactions). */
  readonly deferred?: readonly KeyedChange[];
}

interface Connected {
  readonly writer: PgSession;
  readonly control: PgSession;
  readonly table: TableWriter;
  readonly screen: RowScreen;
  readonly prepared: PreparedTransactions;
}

/** Committers alive in this process, by instance: a restarted attempt closes its predecessor's sessions. */
const live = new Map<string, PostgresCommitter<unknown>>();

export class PostgresCommitter<T> implements TwoPhaseCommitter<T, PostgresTxn> {
  private readonly instance: string;
  private readonly toKeyed: (value: T) => KeyedChange;
  private readonly metrics: SinkMetrics;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private readonly deadLetters: RecordDeadLetters | undefined;
  private readonly uid: string;
  private readonly probe: RefusalProbe;
  private connected: Connected | undefined;
  private readonly buffer = new Map<string, KeyedChange>();
  private flushAt: number;
  private txnOpen = false;
  private txnKeys = new Set<string>();
  /** Changes written into the open transaction, and the source times of those that have one. */
  private txnChanges = 0;
  /**
   * The latest change per key written into the open transaction: if the table refuses a row, the
   * transaction is aborted, and these are written again (under savepoints) without the refused rows.
   * Held until the transaction is prepared: at most one checkpoint's distinct keys.
   */
  private txnWritten = new Map<string, KeyedChange>();
  /**
   * Statements run under savepoints: after a refusal, for the rest of that transaction and the
   * whole next one (bad rows tend to come in bursts, and each refusal on the bare path rewrites the
   * transaction); a transaction without refusals returns to bare statements.
   */
  private guarded = false;
  private refusedInTxn = false;
  private txnSourceTs: number[] = [];
  /** Our prepared, not yet committed transactions by checkpoint: for row locks and metrics. */
  private readonly uncommitted = new Map<number, { keys: Set<string>; changes: number; sourceTs: number[]; preCommitAt: number }>();
  private writtenSinceBarrier = false;
  private lastPreCommitted = 0;
  private lastCommitted = 0;
  private closed = false;
  /** The connection dropped while a transaction was open: its writes are gone, only a restore can redo them. */
  private lostTransaction = false;
  /** Group mode: the partition task's owner epoch; the epoch fence replaces the instance's advisory lock (epoch-fence.ts). */
  private readonly owner: OwnerEpoch | undefined;

  constructor(
    private readonly o: ResolvedPostgresSinkOptions<T>,
    identity: SinkIdentity,
    context: OperatorContext,
  ) {
    this.instance = sinkInstanceName(identity);
    this.owner = ownerEpochOf(identity.jobName);
    this.toKeyed = changeMapper(o.primaryKey, o.toChange, o.columns);
    this.metrics = new SinkMetrics(context.metrics, 'postgres');
    this.now = () => context.now();
    this.log = o.log ?? lineLogger(loggerFor({ job: identity.jobName, uid: identity.sinkUid, subtask: identity.subtaskIndex }).child({ sink: 'postgres' }));
    this.flushAt = o.flushRows;
    this.deadLetters = context.deadLetters;
    this.uid = context.uid;
    this.probe = new RefusalProbe(this.log);
  }

  async beginTransaction(): Promise<void> {
    // BEGIN is sent with the first write: a checkpoint without records prepares nothing.
    this.txnOpen = false;
    this.txnKeys = new Set();
    this.txnWritten = new Map();
    this.guarded = this.refusedInTxn;
    this.refusedInTxn = false;
    this.txnChanges = 0;
    this.txnSourceTs = [];
    return Promise.resolve();
  }

  async write(records: readonly StreamRecord<T>[]): Promise<void> {
    const guarded = this.o.positionColumn !== undefined;
    for (const { value } of records) {
      let change: KeyedChange;
      try {
        change = this.toKeyed(value);
      } catch (error) {
        // The record cannot be mapped onto the table (no key values, not a table change): it would fail every retry.
        if (!(error instanceof PostgresSinkError) || error.retriable) throw error;
        this.refuse({ reason: error.message, error, value });
        continue;
      }
      const buffered = this.buffer.get(change.keyId);
      if (guarded && buffered?.position !== undefined && change.position !== undefined && change.position < buffered.position) continue;
      this.buffer.set(change.keyId, change);
    }
    this.writtenSinceBarrier = this.writtenSinceBarrier || records.length > 0;
    if (this.buffer.size >= this.flushAt) await this.flush();
  }

  async preCommit(checkpointId: number): Promise<PostgresTxn> {
    const preCommitAt = this.now();
    const { writer, prepared } = await this.connect();
    await this.flush();
    this.throwIfTransactionLost();
    this.writtenSinceBarrier = false;
    this.lastPreCommitted = checkpointId;
    if (this.o.mode === 'idempotent') {
      if (this.txnOpen) {
        await writer.query('COMMIT');
        this.recordVisible(preCommitAt, this.txnChanges, this.txnSourceTs);
        this.o.onTransaction?.({ phase: 'committed', checkpointId, records: this.txnKeys.size });
      }
      this.txnOpen = false;
      return { checkpointId, gid: null };
    }
    const deferred = this.buffer.size === 0 ? {} : { deferred: [...this.buffer.values()] };
    if (!this.txnOpen) return { checkpointId, gid: null, ...deferred };
    const nonce = randomUUID();
    if (this.owner !== undefined) {
      try {
        await checkFenceInTransaction(writer, this.instance, this.owner, checkpointId);
      } catch (error) {
        this.txnOpen = false;
        throw error;
      }
    }
    const marker = prepared.markerStatement(checkpointId, nonce);
    await writer.query(marker.sql, marker.params);
    const gid = prepared.gid(checkpointId);
    await writer.query(`PREPARE TRANSACTION ${quoteLiteral(gid)}`);
    this.txnOpen = false;
    this.uncommitted.set(checkpointId, { keys: this.txnKeys, changes: this.txnChanges, sourceTs: this.txnSourceTs, preCommitAt });
    this.o.onTransaction?.({ phase: 'prepared', checkpointId, records: this.txnKeys.size });
    return { checkpointId, gid, nonce, ...deferred };
  }

  async commit(txn: PostgresTxn): Promise<void> {
    if (txn.gid === null || txn.nonce === undefined) {
      this.lastCommitted = Math.max(this.lastCommitted, txn.checkpointId);
      return;
    }
    const { prepared } = await this.connect();
    const held = this.uncommitted.get(txn.checkpointId);
    const outcome = await prepared.commit(txn.checkpointId, txn.nonce);
    // A transaction prepared by an earlier process (committed by a restore) has no times here.
    if (held !== undefined) this.recordVisible(held.preCommitAt, held.changes, held.sourceTs);
    if (outcome === 'already-committed') this.metrics.count('cdcflow_sink_commits_repeated_total');
    this.uncommitted.delete(txn.checkpointId);
    this.lastCommitted = Math.max(this.lastCommitted, txn.checkpointId);
    this.o.onTransaction?.({ phase: 'committed', checkpointId: txn.checkpointId, records: held?.keys.size ?? 0 });
    await prepared.pruneMarkers(txn.checkpointId);
  }

  async recover(committed: readonly PostgresTxn[]): Promise<void> {
    const { prepared } = await this.connect();
    for (const txn of committed) {
      if (txn.gid === null || txn.nonce === undefined) continue;
      const outcome = await prepared.commit(txn.checkpointId, txn.nonce);
      this.log(`restore: ${outcome === 'committed' ? 'committed' : 'found already committed'} ${txn.gid}`);
    }
    const rolledBack = await prepared.rollbackAllExcept(new Set(committed.flatMap((t) => (t.gid === null ? [] : [t.gid]))));
    if (rolledBack.length > 0) {
      this.log(`restore: rolled back ${rolledBack.length} prepared transaction(s) of checkpoints that did not complete: ${rolledBack.join(', ')}`);
      this.metrics.count('cdcflow_sink_rolled_back_total', rolledBack.length);
    }
    if (this.o.mode === 'two-phase' && this.owner !== undefined) await this.claimEpoch(prepared, committed);
    this.buffer.clear();
    for (const change of committed.at(-1)?.deferred ?? []) this.buffer.set(change.keyId, change);
  }

  /** Raises the fence to our epoch; an older owner that prepared after our rollback is rolled back again (epoch-fence.ts). */
  private async claimEpoch(prepared: PreparedTransactions, committed: readonly PostgresTxn[]): Promise<void> {
    const owner = this.owner as OwnerEpoch;
    const { control } = await this.connect();
    const keep = new Set(committed.flatMap((t) => (t.gid === null ? [] : [t.gid])));
    for (let attempt = 1; ; attempt++) {
      if (await claimFence(control, this.instance, owner, 1000)) {
        this.log(`claimed owner epoch ${owner.epoch} of ${this.instance}`);
        return;
      }
      if (attempt >= 30) throw new PostgresSinkError(`could not claim owner epoch ${owner.epoch} of ${this.instance}: an older owner's prepared transaction kept its fence locked for 30 s`, '55P03', { retriable: true });
      const rolledBack = await prepared.rollbackAllExcept(keep);
      if (rolledBack.length > 0) this.log(`claim: rolled back ${rolledBack.join(', ')} (prepared by an older owner)`);
    }
  }

  async leftovers(): Promise<readonly { name: string; checkpointId: number | undefined }[]> {
    if (this.o.mode !== 'two-phase') return [];
    const { prepared } = await this.connect();
    return prepared.leftoversOfSink();
  }

  async discardLeftovers(): Promise<void> {
    if (this.o.mode !== 'two-phase') return;
    const { prepared } = await this.connect();
    const rolledBack = await prepared.rollbackAllOfSink();
    if (rolledBack.length > 0) this.log(`fresh start with discardSinkTransactions: rolled back ${rolledBack.length} prepared transaction(s): ${rolledBack.join(', ')}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (live.get(this.instance) === this) live.delete(this.instance);
    const c = this.connected;
    this.connected = undefined;
    if (c === undefined) return;
    try {
      if (this.txnOpen) await c.writer.query('ROLLBACK');
      await this.writeCoveredRest(c);
    } finally {
      await c.writer.close();
      await c.control.close();
    }
  }

  /**
   * A bounded job ends with a final checkpoint; changes it had to defer are covered by it but
   * would wait for a checkpoint that never comes. If nothing arrived after that barrier and it
   * committed, they are safe to commit now (a restore from it would write them again, equally).
   */
  private async writeCoveredRest(c: Connected): Promise<void> {
    if (this.buffer.size === 0) return;
    const covered = this.o.mode === 'two-phase' && !this.writtenSinceBarrier && this.uncommitted.size === 0 && this.lastCommitted >= this.lastPreCommitted;
    if (!covered) return;
    const rest = [...this.buffer.values()];
    await c.writer.query('BEGIN');
    this.refuseAll(await c.table.apply(c.writer, rest));
    await c.writer.query('COMMIT');
    this.metrics.visible(rest.flatMap((change) => (change.sourceTsMs === undefined ? [] : [change.sourceTsMs])), this.now(), rest.length);
    this.buffer.clear();
  }

  /** Writes every buffered change whose key no uncommitted prepared transaction holds. */
  private async flush(): Promise<void> {
    const writable: KeyedChange[] = [];
    for (const [keyId, change] of this.buffer) {
      if (this.isHeld(keyId)) continue;
      writable.push(change);
      this.buffer.delete(keyId);
    }
    this.flushAt = this.buffer.size + this.o.flushRows;
    if (writable.length === 0) return;
    const { writer, table, screen } = await this.connect();
    this.throwIfTransactionLost();
    // Rows with a value the table would refuse leave before the write: a refusal on the bare path
    // costs the rewrite of the whole open transaction.
    const { accepted, refused } = await screen.screen(async () => (await this.connect()).control, writable);
    if (refused.length > 0) this.metrics.count('cdcflow_postgres_sink_screened_out_total', refused.length);
    this.refuseAll(refused);
    if (accepted.length === 0) return;
    if (!this.txnOpen) {
      await writer.query('BEGIN');
      this.txnOpen = true;
    }
    await this.writeGuarded(writer, table, accepted);
    this.txnChanges += accepted.length;
    for (const change of accepted) {
      this.txnKeys.add(change.keyId);
      if (change.sourceTsMs !== undefined) this.txnSourceTs.push(change.sourceTsMs);
    }
  }

  /**
   * Writes `changes` with bare statements (no extra round trip on a clean stream). If the table
   * still refuses a row (a check or foreign key the screen cannot see), Postgres aborts the whole
   * transaction: it is rolled back, what it held is written again with bare statements (those
   * rows were accepted once), and only the batch that failed is written under savepoints,
   * bisecting down to the refused rows, which the policy then takes (dead letter, fail, skip).
   * While `guarded`, statements run under savepoints from the start.
   */
  private async writeGuarded(writer: PgSession, table: TableWriter, changes: readonly KeyedChange[]): Promise<void> {
    if (this.guarded) {
      this.writeBisected(await table.apply(writer, changes), changes);
      return;
    }
    try {
      await table.applyUnguarded(writer, changes);
    } catch (error) {
      if (!isRowRefusal(sqlStateOf(error))) throw error;
      this.guarded = true;
      this.refusedInTxn = true;
      await this.rewriteTransaction(writer, table);
      this.writeBisected(await table.apply(writer, changes), changes);
      return;
    }
    for (const change of changes) this.txnWritten.set(change.keyId, change);
  }

  /** Rolls the open transaction back and writes again what it held, bare; under savepoints only if that fails too. */
  private async rewriteTransaction(writer: PgSession, table: TableWriter): Promise<void> {
    this.metrics.count('cdcflow_postgres_sink_transaction_rewrites_total');
    await writer.query('ROLLBACK');
    await writer.query('BEGIN');
    const earlier = [...this.txnWritten.values()];
    try {
      await table.applyUnguarded(writer, earlier);
    } catch (error) {
      // Accepted before, refused now: a constraint that depends on other rows changed meanwhile.
      if (!isRowRefusal(sqlStateOf(error))) throw error;
      await writer.query('ROLLBACK');
      await writer.query('BEGIN');
      const refused = await table.apply(writer, earlier);
      for (const { change } of refused) this.txnWritten.delete(change.keyId);
      this.refuseAll(refused);
    }
  }

  /** Records what a guarded write kept; a refused change leaves the key's earlier write in this transaction as it was. */
  private writeBisected(refused: readonly RefusedChange[], changes: readonly KeyedChange[]): void {
    if (refused.length > 0) this.refusedInTxn = true;
    const refusedKeys = new Set(refused.map((r) => r.change.keyId));
    for (const change of changes) if (!refusedKeys.has(change.keyId)) this.txnWritten.set(change.keyId, change);
    this.refuseAll(refused);
  }

  /** Rows the table refused (or would refuse): never written, or rolled back to their savepoint; the policy decides the rest. */
  private refuseAll(refused: readonly RefusedChange[]): void {
    for (const { change, error, sqlState } of refused) {
      const row = change.kind === 'upsert' ? change.row : change.key;
      this.refuse({ reason: `${this.o.table} refused the ${change.kind} of key ${change.keyId} (SQLSTATE ${sqlState}): ${(error as Error).message}`, error, value: row, keyId: change.keyId, ...(change.origin === undefined ? {} : { origin: change.origin }) });
    }
  }

  private refuse(failure: { reason: string; error: unknown; value: unknown; keyId?: string; origin?: NonNullable<KeyedChange['origin']> }): void {
    const { reason, error, value, keyId, origin } = failure;
    if (this.deadLetters === undefined) {
      const where = origin === undefined ? '' : ` (read at ${origin.topic}/${origin.partition}@${origin.offset})`;
      throw new PostgresSinkError(`postgresSink ${this.uid}: ${reason}${where}`, undefined, { domain: 'user', retriable: false, cause: error });
    }
    this.deadLetters.reject({ kind: 'sink-refused', reason, error, value, ...(keyId === undefined ? {} : { key: keyId }), ...(origin === undefined ? {} : { origin }) }, this.o.onRefused);
  }

  private isHeld(keyId: string): boolean {
    for (const { keys } of this.uncommitted.values()) if (keys.has(keyId)) return true;
    return false;
  }

  /** A transaction's changes just became visible (its COMMIT or COMMIT PREPARED returned). */
  private recordVisible(preCommitAt: number, changes: number, sourceTs: readonly number[]): void {
    const now = this.now();
    this.metrics.visible(sourceTs, now, changes);
    this.metrics.committed(preCommitAt, now);
  }

  /**
   * The sessions, opened on first use and opened again after a dropped connection — so a retried
   * commit or recovery reaches Postgres once it is back instead of failing on a dead session.
   * The writer's open transaction does not survive the drop: the sink then fails (retriable) at
   * its next write or barrier, and the job restores from the latest checkpoint.
   */
  private async connect(): Promise<Connected> {
    if (this.closed) throw new PostgresSinkError('postgres sink is closed', undefined, { domain: 'internal', retriable: false });
    const current = this.connected;
    if (current !== undefined && current.writer.broken !== true && current.control.broken !== true) return current;
    if (current !== undefined) {
      this.log(`the ${current.writer.broken === true ? 'writer' : 'control'} connection to Postgres dropped; reconnecting`);
      await current.control.close();
      if (current.writer.broken !== true) {
        // Only the control session died: the writer keeps its open transaction, and stays the
        // writer even if this reconnect fails (a new writer would write outside that transaction).
        const control = await this.o.connect();
        if (this.o.mode === 'two-phase' && this.owner === undefined) await takeInstanceFence(control, this.instance).catch(async (error: unknown) => {
          await control.close();
          throw error;
        });
        const prepared = new PreparedTransactions(control, this.instance, this.o.markerTable, this.o.markerRetention);
        this.connected = { ...current, control, prepared };
        return this.connected;
      }
      this.connected = undefined;
      if (this.txnOpen) this.lostTransaction = true;
      this.txnOpen = false;
      await current.writer.close();
    }
    const previous = live.get(this.instance);
    if (previous !== undefined && previous !== (this as PostgresCommitter<unknown>)) await previous.close().catch(() => undefined);
    live.set(this.instance, this as PostgresCommitter<unknown>);
    const writer = await this.o.connect();
    let control: PgSession | undefined;
    try {
      control = await this.o.connect();
      if (this.o.mode === 'two-phase' && this.owner === undefined) await takeInstanceFence(control, this.instance);
      await writer.query(`SET lock_timeout = ${Math.round(this.o.lockTimeoutMs)}`);
      const table = await TableWriter.describe(control, this.o.table, this.o.primaryKey, {
        positionColumn: this.o.positionColumn,
        deletes: this.o.deletes,
        deletedColumn: this.o.deletedColumn,
        maxRowsPerStatement: this.o.rowsPerStatement,
      });
      const prepared = new PreparedTransactions(control, this.instance, this.o.markerTable, this.o.markerRetention);
      if (this.o.mode === 'two-phase') await this.checkTwoPhase(control, prepared);
      const screen = new RowScreen(table.columns, table.managedColumns(), this.probe);
      this.connected = { writer, control, table, screen, prepared };
      return this.connected;
    } catch (error) {
      await writer.close();
      await control?.close();
      throw error;
    }
  }

  private throwIfTransactionLost(): void {
    if (!this.lostTransaction) return;
    throw new PostgresSinkError(
      `the connection to Postgres dropped with a transaction open (writes since checkpoint ${this.lastPreCommitted}): they are gone; the job restores from the latest checkpoint and writes them again`,
      undefined,
      { retriable: true },
    );
  }

  private async checkTwoPhase(control: PgSession, prepared: PreparedTransactions): Promise<void> {
    const { rows } = await control.query<{ n: number }>("SELECT current_setting('max_prepared_transactions')::int AS n");
    if ((rows[0]?.n ?? 0) <= 0) {
      throw new PostgresSinkError(
        "postgresSink: the server has prepared transactions off (max_prepared_transactions = 0). Set it above 0 and restart Postgres, or use mode: 'idempotent'.",
        undefined,
        { domain: 'user', retriable: false },
      );
    }
    await prepared.ensureMarkerTable();
    if (this.owner !== undefined) await ensureFenceTables(control);
  }
}
