/**
 * The two sessions of one Postgres sink instance: the writer (the open transaction) and the
 * control session (commits, rollbacks, markers, the instance fence, the refusal probe), with what
 * is derived from the table on connect. Opened on first use and opened again after a dropped
 * connection, so a retried commit or recovery reaches Postgres once it is back instead of failing
 * on a dead session.
 */
import { PostgresSinkError, type PgSession } from './pg-session.ts';
import { ensureFenceTables } from './epoch-fence.ts';
import { takeInstanceFence } from './instance-fence.ts';
import type { ResolvedPostgresSinkOptions } from './postgres-options.ts';
import { PreparedTransactions } from './prepared-transactions.ts';
import type { RefusalProbe } from './refusal-probe.ts';
import { RowScreen } from './row-screen.ts';
import { TableWriter } from './table-writer.ts';

export interface Connected {
  readonly writer: PgSession;
  readonly control: PgSession;
  readonly table: TableWriter;
  readonly screen: RowScreen;
  readonly prepared: PreparedTransactions;
}

export type SessionOptions = Pick<
  ResolvedPostgresSinkOptions<unknown>,
  | 'connect'
  | 'mode'
  | 'table'
  | 'primaryKey'
  | 'positionColumn'
  | 'deletes'
  | 'deletedColumn'
  | 'rowsPerStatement'
  | 'lockTimeoutMs'
  | 'markerTable'
  | 'markerRetention'
>;

/** Whoever holds an instance's sessions in this process: a restarted attempt closes its predecessor first. */
export interface SessionOwner {
  close(): Promise<void>;
}

const live = new Map<string, SessionOwner>();

export class PostgresSessions {
  private connected: Connected | undefined;
  private closed = false;

  /**
   * @param onWriterLost the writer's connection dropped and a new writer replaces it: whatever
   *   transaction was open on it is gone (Postgres rolled it back)
   */
  constructor(
    private readonly o: SessionOptions,
    private readonly instance: string,
    private readonly owner: SessionOwner,
    private readonly probe: RefusalProbe,
    private readonly log: (line: string) => void,
    private readonly onWriterLost: () => void,
    /**
     * Group mode: the owner epoch. Its fence (epoch-fence.ts) replaces the instance's advisory
     * lock, which a paused old owner would hold forever; owners of different epochs are told apart
     * by the database, not by closing each other here.
     */
    ownerEpoch?: number,
  ) {
    this.epochFenced = ownerEpoch !== undefined;
    this.liveKey = ownerEpoch === undefined ? instance : `${instance}@epoch-${ownerEpoch}`;
  }

  private readonly epochFenced: boolean;
  private readonly liveKey: string;

  /**
   * The live sessions. The writer's open transaction does not survive a drop: `onWriterLost`
   * tells the committer, which fails (retriable) at its next write or barrier, and the job
   * restores from the latest checkpoint.
   */
  async connect(): Promise<Connected> {
    if (this.closed)
      throw new PostgresSinkError('postgres sink is closed', undefined, { domain: 'internal', retriable: false });
    const current = this.connected;
    if (current !== undefined && current.writer.broken !== true && current.control.broken !== true) return current;
    if (current !== undefined) {
      this.log(
        `the ${current.writer.broken === true ? 'writer' : 'control'} connection to Postgres dropped; reconnecting`,
      );
      await current.control.close();
      if (current.writer.broken !== true) {
        // Only the control session died: the writer keeps its open transaction, and stays the
        // writer even if this reconnect fails (a new writer would write outside that transaction).
        const control = await this.o.connect();
        if (this.o.mode === 'two-phase' && !this.epochFenced)
          await takeInstanceFence(control, this.instance).catch(async (error: unknown) => {
            await control.close();
            throw error;
          });
        const prepared = new PreparedTransactions(control, this.instance, this.o.markerTable, this.o.markerRetention);
        this.connected = { ...current, control, prepared };
        return this.connected;
      }
      this.connected = undefined;
      this.onWriterLost();
      await current.writer.close();
    }
    const previous = live.get(this.liveKey);
    if (previous !== undefined && previous !== this.owner) await previous.close().catch(() => undefined);
    live.set(this.liveKey, this.owner);
    const writer = await this.o.connect();
    let control: PgSession | undefined;
    try {
      control = await this.o.connect();
      if (this.o.mode === 'two-phase' && !this.epochFenced) await takeInstanceFence(control, this.instance);
      await writer.query(`SET lock_timeout = ${Math.round(this.o.lockTimeoutMs)}`);
      const table = await TableWriter.describe(control, this.o.table, this.o.primaryKey, {
        positionColumn: this.o.positionColumn,
        deletes: this.o.deletes,
        deletedColumn: this.o.deletedColumn,
        maxRowsPerStatement: this.o.rowsPerStatement,
      });
      const prepared = new PreparedTransactions(control, this.instance, this.o.markerTable, this.o.markerRetention);
      if (this.o.mode === 'two-phase') await checkTwoPhase(control, prepared);
      if (this.epochFenced) await ensureFenceTables(control);
      const screen = new RowScreen(table.columns, table.managedColumns(), this.probe);
      // Closed while we connected: these sessions would outlive the sink (and keep the process alive).
      if (this.closed)
        throw new PostgresSinkError('postgres sink is closed', undefined, { domain: 'internal', retriable: false });
      this.connected = { writer, control, table, screen, prepared };
      return this.connected;
    } catch (error) {
      await writer.close();
      await control?.close();
      throw error;
    }
  }

  /**
   * Closes for good: `last` runs on the sessions if they are open (a rollback, the last write of
   * a bounded job), then both close whatever `last` did. Later `connect` calls fail.
   */
  async close(last: (c: Connected) => Promise<void>): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (live.get(this.liveKey) === this.owner) live.delete(this.liveKey);
    const c = this.connected;
    this.connected = undefined;
    if (c === undefined) return;
    try {
      await last(c);
    } finally {
      await c.writer.close();
      await c.control.close();
    }
  }
}

async function checkTwoPhase(control: PgSession, prepared: PreparedTransactions): Promise<void> {
  const { rows } = await control.query<{ n: number }>("SELECT current_setting('max_prepared_transactions')::int AS n");
  if ((rows[0]?.n ?? 0) <= 0) {
    throw new PostgresSinkError(
      "postgresSink: the server has prepared transactions off (max_prepared_transactions = 0). Set it above 0 and restart Postgres, or use mode: 'idempotent'.",
      undefined,
      { domain: 'user', retriable: false },
    );
  }
  await prepared.ensureMarkerTable();
}
