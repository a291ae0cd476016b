/**
 * One Postgres transaction of the sink, from BEGIN (sent with its first write) through its
 * lifecycle (sink-transaction-state.ts): written into while open; PREPAREd at the barrier
 * (two-phase) or committed there (idempotent); COMMIT PREPARED when its checkpoint completes;
 * rolled back at close, or lost with the writer's connection.
 *
 * While open it also keeps what it wrote, latest change per key: if the table refuses a row,
 * Postgres aborts the whole transaction, which is then rolled back and written again (under
 * savepoints) without the refused rows. That copy is released at the barrier: at most one
 * checkpoint's distinct keys.
 */
import type { SinkMetrics } from '../sink-metrics.ts';
import { SinkTransaction, type SinkTransactionState } from '../sink-transaction-state.ts';
import { sqlStateOf, type PgSession } from './pg-session.ts';
import type { RowRefusals } from './row-refusals.ts';
import { quoteLiteral } from './sql.ts';
import { isRowRefusal, type KeyedChange, type RefusedChange, type TableWriter } from './table-writer.ts';

export class PostgresTransaction {
  private readonly lifecycle: SinkTransaction;
  /** Distinct keys written: an uncommitted prepared transaction holds their row locks. */
  readonly keys = new Set<string>();
  /** Changes written, and the source times of those that have one (for visibility metrics). */
  private changeCount = 0;
  readonly sourceTs: number[] = [];
  private written = new Map<string, KeyedChange>();
  /**
   * Statements run under savepoints: after a refusal, for the rest of this transaction and the
   * whole next one (bad rows tend to come in bursts, and each refusal on the bare path rewrites the
   * transaction); a transaction without refusals returns to bare statements.
   */
  private guarded: boolean;
  private refusedRows = false;
  private preCommittedAt: number | undefined;

  private constructor(name: string, guarded: boolean) {
    this.lifecycle = SinkTransaction.open(name);
    this.guarded = guarded;
  }

  /** BEGIN on the writer: the first write of a checkpoint opens its transaction. */
  static async begin(writer: PgSession, name: string, guarded: boolean): Promise<PostgresTransaction> {
    await writer.query('BEGIN');
    return new PostgresTransaction(name, guarded);
  }

  get state(): SinkTransactionState {
    return this.lifecycle.state;
  }

  get name(): string {
    return this.lifecycle.name;
  }

  get changes(): number {
    return this.changeCount;
  }

  /** The table refused a row in it: the next transaction starts under savepoints. */
  get hadRefusals(): boolean {
    return this.refusedRows;
  }

  get preCommitAt(): number | undefined {
    return this.preCommittedAt;
  }

  /**
   * Writes `changes` with bare statements (no extra round trip on a clean stream). If the table
   * still refuses a row (a check or foreign key the screen cannot see), Postgres aborts the whole
   * transaction: it is rolled back, what it held is written again with bare statements (those
   * rows were accepted once), and only the batch that failed is written under savepoints,
   * bisecting down to the refused rows, which the policy then takes (dead letter, fail, skip).
   * While guarded, statements run under savepoints from the start.
   */
  async write(
    writer: PgSession,
    table: TableWriter,
    changes: readonly KeyedChange[],
    refusals: RowRefusals,
    metrics: SinkMetrics,
  ): Promise<void> {
    this.lifecycle.requireOpen();
    if (this.guarded) {
      this.keepBisected(await table.apply(writer, changes), changes, refusals);
    } else {
      try {
        await table.applyUnguarded(writer, changes);
        for (const change of changes) this.written.set(change.keyId, change);
      } catch (error) {
        if (!isRowRefusal(sqlStateOf(error))) throw error;
        this.guarded = true;
        this.refusedRows = true;
        await this.rewrite(writer, table, refusals, metrics);
        this.keepBisected(await table.apply(writer, changes), changes, refusals);
      }
    }
    this.changeCount += changes.length;
    for (const change of changes) {
      this.keys.add(change.keyId);
      if (change.sourceTsMs !== undefined) this.sourceTs.push(change.sourceTsMs);
    }
  }

  /** Phase 1 (two-phase mode): `PREPARE TRANSACTION gid`; the writer is free for the next transaction. */
  async prepare(writer: PgSession, gid: string, at: number): Promise<void> {
    this.lifecycle.checkMove('pre-committed');
    await writer.query(`PREPARE TRANSACTION ${quoteLiteral(gid)}`);
    this.preCommitted(at);
  }

  /** One phase (idempotent mode): COMMIT at the barrier. */
  async commitNow(writer: PgSession): Promise<void> {
    this.lifecycle.checkMove('committed');
    await writer.query('COMMIT');
    this.lifecycle.moveTo('committed');
    this.written = new Map();
  }

  /** COMMIT PREPARED returned (or found it committed before). */
  committed(): void {
    this.lifecycle.moveTo('committed');
  }

  /** Rolled back: at close, or gone with the writer's dropped connection (Postgres rolled it back). */
  aborted(): void {
    this.lifecycle.moveTo('aborted');
    this.written = new Map();
  }

  private preCommitted(at: number): void {
    this.lifecycle.moveTo('pre-committed');
    this.preCommittedAt = at;
    this.written = new Map();
  }

  /** Rolls the transaction back and writes again what it held, bare; under savepoints only if that fails too. */
  private async rewrite(
    writer: PgSession,
    table: TableWriter,
    refusals: RowRefusals,
    metrics: SinkMetrics,
  ): Promise<void> {
    metrics.count('cdcflow_postgres_sink_transaction_rewrites_total');
    await writer.query('ROLLBACK');
    await writer.query('BEGIN');
    const earlier = [...this.written.values()];
    try {
      await table.applyUnguarded(writer, earlier);
    } catch (error) {
      // Accepted before, refused now: a constraint that depends on other rows changed meanwhile.
      if (!isRowRefusal(sqlStateOf(error))) throw error;
      await writer.query('ROLLBACK');
      await writer.query('BEGIN');
      const refused = await table.apply(writer, earlier);
      for (const { change } of refused) this.written.delete(change.keyId);
      refusals.all(refused);
    }
  }

  /** Records what a guarded write kept; a refused change leaves the key's earlier write in this transaction as it was. */
  private keepBisected(
    refused: readonly RefusedChange[],
    changes: readonly KeyedChange[],
    refusals: RowRefusals,
  ): void {
    if (refused.length > 0) this.refusedRows = true;
    const refusedKeys = new Set(refused.map((r) => r.change.keyId));
    for (const change of changes) if (!refusedKeys.has(change.keyId)) this.written.set(change.keyId, change);
    refusals.all(refused);
  }
}
