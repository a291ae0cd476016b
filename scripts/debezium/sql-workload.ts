/**
 * SQL against a real `orders` source table, for tests, the demo and the freshness probe: what a
 * Debezium connector must turn into change events, with the cases that broke real pipelines:
 * single-row inserts/updates/deletes, multi-row transactions (some rolled back), one large
 * transaction (5k rows by default), primary-key changes, TOASTed `notes` (~8 KB of incompressible
 * text, so updates that leave it alone carry Debezium's unavailable-value placeholder under
 * REPLICA IDENTITY DEFAULT), NUMERIC amounts with negative values, an optional TRUNCATE, and
 * concurrent interleaved transactions (a transaction that began first commits last, so its change
 * LSNs sit below the other's commit).
 *
 * Bounded by `maxChanges` and `maxDurationMs`, paced by a shared token bucket (`ratePerSecond`
 * changed rows per second). Each worker owns the ids ≡ worker (mod workers), so workers never wait
 * on each other's row locks; they interleave in time only. Seeded: the same seed gives the same
 * operation sequence per worker (commit interleaving across workers still varies).
 */
import pg from 'pg';
import { Prng } from '../workload/prng.ts';

export interface SqlWorkloadOptions {
  readonly databaseUrl: string;
  readonly table: string;
  readonly seed: number;
  /** Stop after about this many changed rows (the operation in flight finishes). */
  readonly maxChanges: number;
  readonly maxDurationMs: number;
  /** Changed rows per second across all workers. @default 2000 */
  readonly ratePerSecond?: number;
  /** Concurrent writers (each with two connections, for interleaving). @default 3 */
  readonly workers?: number;
  /** Rows in the one large transaction (0: none); it runs once a quarter of maxChanges is done. @default 5000 */
  readonly bigTransactionRows?: number;
  /** TRUNCATE the table once, at half of maxChanges (all workers pause around it). @default false */
  readonly truncate?: boolean;
  /** Share of inserted rows whose notes are TOASTed (~8 KB). @default 0.2 */
  readonly toastShare?: number;
  /** Ids below this already exist (see seedOrders) and are shared out among the workers. @default 0 */
  readonly seededRows?: number;
  readonly log?: (line: string) => void;
}

export interface SqlWorkloadReport {
  /** Rows changed by committed statements (a TRUNCATE counts the rows it removed). */
  readonly changes: number;
  readonly committed: number;
  readonly rolledBack: number;
  readonly byKind: Readonly<Record<string, number>>;
  readonly durationMs: number;
}

const statuses = ['pending', 'paid', 'shipped', 'delivered'] as const;
const currencies = ['EUR', 'USD', 'GBP', 'CHF'] as const;
const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

type Sql = { text: string; values: unknown[] };

/** Rows for ids 1..count, committed in chunks of 1,000 (before the connector starts: its snapshot). */
export async function seedOrders(databaseUrl: string, table: string, count: number, seed = 1): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const prng = new Prng(seed);
    for (let from = 1; from <= count; from += 1000) {
      const ids: number[] = [];
      for (let id = from; id < Math.min(from + 1000, count + 1); id++) ids.push(id);
      await client.query(
        insertMany(
          table,
          ids.map((id) => orderRow(prng, id, 0.05)),
        ),
      );
    }
  } finally {
    await client.end();
  }
}

interface Row {
  readonly id: number;
  readonly customer_id: number;
  readonly status: string;
  readonly amount: string;
  readonly currency: string;
  readonly shipping_address: string;
  readonly notes: string;
}

function orderRow(prng: Prng, id: number, toastShare: number): Row {
  return {
    id,
    customer_id: prng.range(1, 5000),
    status: 'pending',
    amount: amount(prng),
    currency: currencies[prng.int(currencies.length)] as string,
    shipping_address: `${prng.range(1, 999)} ${text(prng, 12)} Street, ${text(prng, 8)}`,
    notes: text(prng, prng.chance(toastShare) ? 8000 : 300),
  };
}

/** A numeric(12,2) value, about one in six negative (refunds), some with a single-digit fraction. */
function amount(prng: Prng): string {
  const cents = prng.range(0, 9_999_999);
  const sign = prng.chance(0.15) ? '-' : '';
  return `${sign}${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

/** Random base64-alphabet text: compresses poorly, so 8,000 characters are stored out of line (TOAST). */
function text(prng: Prng, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[prng.int(64)];
  return out;
}

const columns = ['id', 'customer_id', 'status', 'amount', 'currency', 'shipping_address', 'notes'] as const;

function insertMany(table: string, rows: readonly Row[]): Sql {
  const values: unknown[] = [];
  const tuples = rows.map((row) => {
    const start = values.length;
    for (const c of columns) values.push(row[c]);
    return `(${columns.map((_, i) => `$${start + i + 1}`).join(', ')}, clock_timestamp(), clock_timestamp())`;
  });
  return {
    text: `INSERT INTO ${pg.escapeIdentifier(table)} (${columns.join(', ')}, created_at, updated_at) VALUES ${tuples.join(', ')}`,
    values,
  };
}

class RateLimiter {
  private next = Date.now();
  constructor(private readonly perSecond: number) {}
  async take(n: number): Promise<void> {
    const now = Date.now();
    const at = Math.max(this.next, now);
    this.next = at + (n * 1000) / this.perSecond;
    if (at > now) await sleep(at - now);
  }
}

/** One writer: its ids, its two connections, its random stream. */
class Writer {
  readonly live: number[] = [];
  private readonly index = new Map<number, number>();
  private nextId: number;

  constructor(
    readonly n: number,
    private readonly of: number,
    readonly prng: Prng,
    readonly main: pg.Client,
    readonly side: pg.Client,
    seeded: number,
  ) {
    for (let id = 1; id <= seeded; id++) if (id % of === n) this.add(id);
    this.nextId = seeded + 1 + ((n - ((seeded + 1) % of) + of) % of);
  }

  newId(): number {
    const id = this.nextId;
    this.nextId += this.of;
    return id;
  }
  add(id: number): void {
    this.index.set(id, this.live.length);
    this.live.push(id);
  }
  remove(id: number): void {
    const at = this.index.get(id);
    if (at === undefined) return;
    const last = this.live.pop() as number;
    if (last !== id) {
      this.live[at] = last;
      this.index.set(last, at);
    }
    this.index.delete(id);
  }
  clear(): void {
    this.live.length = 0;
    this.index.clear();
  }
  pick(): number | undefined {
    return this.live.length === 0 ? undefined : this.live[this.prng.int(this.live.length)];
  }
}

export class SqlWorkload {
  private readonly limiter: RateLimiter;
  private readonly byKind: Record<string, number> = {};
  private changes = 0;
  private committed = 0;
  private rolledBack = 0;
  private stopping = false;
  private paused: Promise<void> | undefined;
  private bigDone = false;
  private truncateDone = false;
  private readonly started = Date.now();
  private writers: Writer[] = [];
  private readonly inFlight = new Set<number>();
  /** Resolves when the workload finished (bounds reached or stop()); rejects on an SQL error. */
  readonly done: Promise<SqlWorkloadReport>;

  private constructor(private readonly o: SqlWorkloadOptions) {
    this.limiter = new RateLimiter(o.ratePerSecond ?? 2000);
    this.done = this.run();
  }

  /** Starts writing at once; await `done` or call `stop()`. */
  static start(o: SqlWorkloadOptions): SqlWorkload {
    return new SqlWorkload(o);
  }

  /** Asks every writer to finish its operation in flight and stop; resolves with the report. */
  async stop(): Promise<SqlWorkloadReport> {
    this.stopping = true;
    return this.done;
  }

  get progress(): number {
    return this.changes;
  }

  private report(): SqlWorkloadReport {
    return {
      changes: this.changes,
      committed: this.committed,
      rolledBack: this.rolledBack,
      byKind: { ...this.byKind },
      durationMs: Date.now() - this.started,
    };
  }

  private async run(): Promise<SqlWorkloadReport> {
    const count = this.o.workers ?? 3;
    const connect = async (): Promise<pg.Client> => {
      const client = new pg.Client({ connectionString: this.o.databaseUrl });
      await client.connect();
      // A lock wait means a bug in the key bookkeeping above: fail instead of hanging.
      await client.query("SET lock_timeout = '10s'");
      // The load generator does not wait for each commit's WAL flush (the CDC stream is the same;
      // a crash of Postgres could only lose the last generated changes, which no test relies on).
      await client.query('SET synchronous_commit = off');
      return client;
    };
    try {
      for (let n = 0; n < count; n++)
        this.writers.push(
          new Writer(
            n,
            count,
            new Prng(this.o.seed * 7919 + n),
            await connect(),
            await connect(),
            this.o.seededRows ?? 0,
          ),
        );
      await Promise.all(this.writers.map((w) => this.loop(w)));
      return this.report();
    } catch (error) {
      this.stopping = true;
      throw error;
    } finally {
      await Promise.all(this.writers.flatMap((w) => [w.main.end(), w.side.end()]).map((p) => p.catch(() => undefined)));
    }
  }

  private finished(): boolean {
    return this.stopping || this.changes >= this.o.maxChanges || Date.now() - this.started >= this.o.maxDurationMs;
  }

  private async loop(w: Writer): Promise<void> {
    while (!this.finished()) {
      if (this.paused !== undefined) await this.paused;
      if (this.finished()) break;
      if (this.o.truncate === true && !this.truncateDone && this.changes >= this.o.maxChanges / 2 && w.n === 0) {
        await this.truncate();
        continue;
      }
      const big = this.o.bigTransactionRows ?? 5000;
      if (big > 0 && !this.bigDone && this.changes >= this.o.maxChanges / 4 && w.n === 0) {
        this.bigDone = true;
        await this.bigTransaction(w, big);
        continue;
      }
      this.inFlight.add(w.n);
      try {
        await this.step(w);
      } finally {
        this.inFlight.delete(w.n);
      }
    }
  }

  /** Pauses the other writers between operations, truncates, forgets every live id, resumes. */
  private async truncate(): Promise<void> {
    this.truncateDone = true;
    let resume: () => void = () => undefined;
    this.paused = new Promise((resolve) => (resume = resolve));
    while (this.inFlight.size > 0) await sleep(5);
    const main = (this.writers[0] as Writer).main;
    const { rows } = await main.query<{ n: string }>(`SELECT count(*) AS n FROM ${pg.escapeIdentifier(this.o.table)}`);
    await main.query(`TRUNCATE ${pg.escapeIdentifier(this.o.table)}`);
    for (const w of this.writers) w.clear();
    this.count('truncate', Number(rows[0]?.n ?? 0));
    this.committed += 1;
    this.o.log?.(`truncated ${this.o.table} (${rows[0]?.n ?? 0} rows) after ${this.changes} changes`);
    this.paused = undefined;
    resume();
  }

  private async bigTransaction(w: Writer, rows: number): Promise<void> {
    await this.limiter.take(rows);
    const batch: Row[] = [];
    for (let i = 0; i < rows; i++) batch.push(orderRow(w.prng, w.newId(), 0));
    await w.main.query('BEGIN');
    for (let i = 0; i < batch.length; i += 1000) await w.main.query(insertMany(this.o.table, batch.slice(i, i + 1000)));
    await w.main.query('COMMIT');
    for (const row of batch) w.add(row.id);
    this.count('big-transaction', rows);
    this.committed += 1;
    this.o.log?.(`committed a ${rows}-row transaction`);
  }

  private count(kind: string, rows: number): void {
    this.byKind[kind] = (this.byKind[kind] ?? 0) + rows;
    this.changes += rows;
  }

  private t(): string {
    return pg.escapeIdentifier(this.o.table);
  }

  /** One statement's SQL for a random single-row change of this writer; updates `live` optimistically. */
  private change(
    w: Writer,
    toastShare: number,
    avoid?: number,
  ): { sql: Sql; kind: string; key: number; undo: () => void } {
    const r = w.prng.next();
    const target = w.pick();
    if (r < 0.25 || target === undefined || target === avoid) {
      const row = orderRow(w.prng, w.newId(), toastShare);
      w.add(row.id);
      return { sql: insertMany(this.o.table, [row]), kind: 'insert', key: row.id, undo: () => w.remove(row.id) };
    }
    if (r < 0.33) {
      w.remove(target);
      return {
        sql: { text: `DELETE FROM ${this.t()} WHERE id = $1`, values: [target] },
        kind: 'delete',
        key: target,
        undo: () => w.add(target),
      };
    }
    if (r < 0.36) {
      const id = w.newId();
      w.remove(target);
      w.add(id);
      return {
        sql: {
          text: `UPDATE ${this.t()} SET id = $2, updated_at = clock_timestamp() WHERE id = $1`,
          values: [target, id],
        },
        kind: 'primary-key-change',
        key: target,
        undo: () => (w.remove(id), w.add(target)),
      };
    }
    // Updates: status moves on; some change the amount (maybe negative); one in ten rewrites notes.
    const status = statuses[w.prng.int(statuses.length)] as string;
    if (w.prng.chance(0.1)) {
      return {
        sql: {
          text: `UPDATE ${this.t()} SET status = $2, notes = $3, updated_at = clock_timestamp() WHERE id = $1`,
          values: [target, status, text(w.prng, w.prng.chance(toastShare) ? 8000 : 300)],
        },
        kind: 'update-notes',
        key: target,
        undo: () => undefined,
      };
    }
    if (w.prng.chance(0.4)) {
      return {
        sql: {
          text: `UPDATE ${this.t()} SET status = $2, amount = $3, updated_at = clock_timestamp() WHERE id = $1`,
          values: [target, status, amount(w.prng)],
        },
        kind: 'update-amount',
        key: target,
        undo: () => undefined,
      };
    }
    return {
      sql: {
        text: `UPDATE ${this.t()} SET status = $2, updated_at = clock_timestamp() WHERE id = $1`,
        values: [target, status],
      },
      kind: 'update-status',
      key: target,
      undo: () => undefined,
    };
  }

  private async exec(client: pg.Client, sql: Sql): Promise<number> {
    const result = await client.query(sql);
    return result.rowCount ?? 0;
  }

  private async step(w: Writer): Promise<void> {
    const toast = this.o.toastShare ?? 0.2;
    const r = w.prng.next();
    if (r < 0.6) {
      // One autocommitted statement.
      const op = this.change(w, toast);
      await this.limiter.take(1);
      const rows = await this.exec(w.main, op.sql);
      if (rows === 0) op.undo();
      this.count(op.kind, rows);
      this.committed += 1;
      return;
    }
    if (r < 0.9) {
      // A multi-row transaction; about one in twelve is rolled back (nothing of it may reach the sink).
      const size = w.prng.range(2, 8);
      const rollback = w.prng.chance(0.08);
      await this.limiter.take(size);
      await w.main.query('BEGIN');
      const ops: { kind: string; rows: number; undo: () => void }[] = [];
      for (let i = 0; i < size; i++) {
        const op = this.change(w, toast);
        ops.push({ kind: op.kind, rows: await this.exec(w.main, op.sql), undo: op.undo });
      }
      await w.main.query(rollback ? 'ROLLBACK' : 'COMMIT');
      if (rollback) {
        for (const op of ops.reverse()) op.undo();
        this.rolledBack += 1;
        return;
      }
      for (const op of ops) this.count(`tx-${op.kind}`, op.rows);
      this.committed += 1;
      return;
    }
    // Interleaved: A begins and writes, B begins, writes and commits, then A writes again and
    // commits. A's first change LSN is below B's commit LSN, yet A commits after B.
    // B never touches A's first row (it would wait for A's lock while A waits for B: a deadlock
    // in this code, not in Postgres); a key A changed from (primary-key change) is no longer live.
    const a1 = this.change(w, toast);
    const b = this.change(w, toast, a1.key);
    const a2 = this.change(w, toast);
    await this.limiter.take(3);
    await w.main.query('BEGIN');
    const ra1 = await this.exec(w.main, a1.sql);
    await w.side.query('BEGIN');
    let rb: number;
    try {
      rb = await this.exec(w.side, b.sql);
      await w.side.query('COMMIT');
    } catch (error) {
      await w.side.query('ROLLBACK').catch(() => undefined);
      await w.main.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    const ra2 = await this.exec(w.main, a2.sql);
    await w.main.query('COMMIT');
    this.count(`interleaved-${b.kind}`, rb);
    this.count(`interleaved-${a1.kind}`, ra1 + ra2);
    this.committed += 2;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
