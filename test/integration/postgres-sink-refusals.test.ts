/**
 * Issue 10, defect 2, against the real server: values the target refuses (`amount` = "twelve
 * euros", "1e400" into numeric(12,2), a NOT NULL violated) used to fail the Postgres write in a
 * restart loop with an error naming neither key nor offset. Now each statement runs under a
 * savepoint; a refused statement is retried row by row and only the refused rows leave the
 * two-phase transaction, to the dead-letter topic (stage = the sink's uid), while every other row
 * of the batch commits exactly once with its checkpoint.
 *
 * Values the column types refuse are found before the write (client-side checks plus one probe
 * round trip), so the open transaction is neither aborted nor rewritten; what only the write can
 * find (a CHECK constraint) still aborts it, and then only the failed batch goes under savepoints.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../operators/sources/kafka/dead-letter.ts';
import type { DeadLetterWriter } from '../../operators/sources/kafka/dead-letter-writer.ts';
import { postgresSink } from '../../operators/sinks/postgres/postgres-sink.ts';
import { pgConnect, type PgConnect } from '../../operators/sinks/postgres/pg-session.ts';
import type { TableChange } from '../../operators/table-change.ts';
import { StreamEnvironment, fromCollection } from '../../runtime/index.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { streamPosition } from '../../state/change-position.ts';

interface Order {
  readonly id: number;
  readonly status: string | null;
  readonly amount: string;
}
type Change = TableChange<number, Order>;

const upsert = (id: number, amount: string, status: string | null = 'paid'): Change => ({
  kind: 'upsert',
  key: id,
  row: { id, status, amount },
  previous: null,
  position: streamPosition(0, id),
  sourceTsMs: Date.now(),
  origin: { topic: 'cdc.orders', partition: 1, offset: String(1000 + id) },
});

describe('postgres sink: rows the table refuses (issue 10, defect 2)', () => {
  const url = testEndpoints().databaseUrl;
  const jobName = uniqueName('pgrefuse');
  let client: pg.Client;
  const tables: string[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    client = new pg.Client({ connectionString: url });
    await client.connect();
  });
  afterAll(async () => {
    const prepared = await client.query<{ gid: string }>(
      'select gid from pg_prepared_xacts where left(gid, length($1)) = $1',
      [jobName],
    );
    for (const { gid } of prepared.rows) await client.query(`rollback prepared '${gid}'`);
    for (const t of tables) await client.query(`drop table if exists ${t}`);
    await client.query("delete from cdcflow_sink_commits where sink like $1 || '%'", [jobName]).catch(() => undefined);
    await client.end();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  async function run(
    changes: readonly Change[],
    onRefused: 'dead-letter' | 'fail' | 'skip' = 'dead-letter',
    flushRows = 5000,
    options: { check?: string; connect?: PgConnect } = {},
  ) {
    const table = uniqueName('orders').replace(/-/g, '_');
    tables.push(table);
    await client.query(
      `create table ${table} (id bigint primary key, status text not null, amount numeric(12,2)${options.check === undefined ? '' : `, check (${options.check})`})`,
    );
    const dir = mkdtempSync(join(tmpdir(), 'cdcflow-pgrefuse-'));
    dirs.push(dir);
    const letters: DeadLetter[] = [];
    const writer: DeadLetterWriter = {
      open: () => Promise.resolve(),
      write: (l) => (letters.push(...l), Promise.resolve()),
      close: () => Promise.resolve(),
    };
    const env = StreamEnvironment.create({
      jobName,
      restore: 'none',
      checkpoints: { dir: join(dir, 'chk'), intervalMs: 100 },
      state: { backend: 'memory', dir: join(dir, 'state') },
      restart: { maxAttempts: 2, initialDelayMs: 10 },
      deadLetters: { writer },
      log: () => undefined,
    });
    env
      .fromSource(fromCollection(changes, { batchSize: Math.min(50, flushRows) }))
      .sinkTo(
        postgresSink<number, Order>({
          table,
          primaryKey: ['id'],
          connectionString: url,
          onRefused,
          flushRows,
          ...(options.connect === undefined ? {} : { connect: options.connect }),
        }),
      )
      .uid('orders-pg');
    const outcome = await env.execute().then(
      (result) => ({ restarts: result.restarts, error: undefined }),
      (error: unknown) => ({ restarts: undefined, error }),
    );
    const rows = (
      await client.query<{ id: string; amount: string }>(`select id, amount from ${table} order by id`)
    ).rows.map((r) => `${r.id}:${r.amount}`);
    return { outcome, rows, letters };
  }

  const good = (from: number, count: number): Change[] =>
    Array.from({ length: count }, (_, i) => upsert(from + i, `${from + i}.50`));
  const bad = [upsert(1001, 'twelve euros'), upsert(1002, '1e400'), upsert(1003, '5.00', null)];

  it('dead-letters each refused row with key, offset, SQLSTATE and the sink uid, and commits every other row of the batch', async () => {
    const { outcome, rows, letters } = await run([...good(1, 20), ...bad, ...good(21, 20)]);
    expect(outcome.error).toBeUndefined();
    expect(outcome.restarts).toBe(0);
    expect(rows).toEqual(Array.from({ length: 40 }, (_, i) => `${i + 1}:${i + 1}.50`));
    expect(letters.map((l) => [l.stage, l.errorKind, l.topic, l.partition, l.offset])).toEqual([
      ['orders-pg', 'sink-refused', 'cdc.orders', 1, '2001'],
      ['orders-pg', 'sink-refused', 'cdc.orders', 1, '2002'],
      ['orders-pg', 'sink-refused', 'cdc.orders', 1, '2003'],
    ]);
    expect(letters[0]?.reason).toMatch(/refused the upsert of key \[1001\] \(SQLSTATE 22P02\)/);
    expect(letters[1]?.reason).toMatch(/\(SQLSTATE 22003\)/);
    expect(letters[2]?.reason).toMatch(/\(SQLSTATE 23502\)/);
    expect(JSON.parse(letters[0]?.value?.toString() ?? '')).toEqual({
      id: 1001,
      status: 'paid',
      amount: 'twelve euros',
    });
  }, 60_000);

  it('a refusal after earlier flushes of the same transaction loses none of them (the transaction is rewritten without the refused row)', async () => {
    // flushRows 10: rows 1..20 are written by two flushes before the bad rows arrive, in the same transaction.
    const { outcome, rows, letters } = await run([...good(1, 20), ...bad, ...good(21, 20)], 'dead-letter', 10);
    expect(outcome.restarts).toBe(0);
    expect(rows).toEqual(Array.from({ length: 40 }, (_, i) => `${i + 1}:${i + 1}.50`));
    expect(letters.map((l) => l.offset)).toEqual(['2001', '2002', '2003']);
  }, 60_000);

  it("with onRefused: 'fail' the job fails with an error naming the key and the offset", async () => {
    const { outcome, rows } = await run([...good(1, 5), upsert(1001, 'twelve euros')], 'fail');
    expect(outcome.error).toBeDefined();
    expect((outcome.error as Error).message).toMatch(
      /orders-pg: the record at cdc\.orders\/1@2001 \(key "\[1001\]"\) failed \(sink-refused\)/,
    );
    expect(rows).toEqual([]);
  }, 60_000);

  it("with onRefused: 'skip' the refused rows are dropped (counted) and nothing is dead-lettered", async () => {
    const { outcome, rows, letters } = await run([...good(1, 5), ...bad], 'skip');
    expect(outcome.restarts).toBe(0);
    expect(rows).toHaveLength(5);
    expect(letters).toEqual([]);
  }, 60_000);

  it('values the column types refuse are dead-lettered before the write: the open transaction is neither rolled back nor rewritten', async () => {
    const statements: string[] = [];
    const base = pgConnect(url);
    const connect: PgConnect = async () => {
      const session = await base();
      return {
        query: (sql, params) => (statements.push(sql), session.query(sql, params)),
        close: () => session.close(),
      };
    };
    // ' 12.5 ' is unusual (the checks ask Postgres) but valid: it must be written, not dead-lettered.
    const { outcome, rows, letters } = await run(
      [...good(1, 20), ...bad, upsert(1004, ' 12.5 '), ...good(21, 20)],
      'dead-letter',
      10,
      { connect },
    );
    expect(outcome.restarts).toBe(0);
    expect(rows).toEqual([...Array.from({ length: 40 }, (_, i) => `${i + 1}:${i + 1}.50`), '1004:12.50']);
    expect(letters.map((l) => l.offset)).toEqual(['2001', '2002', '2003']);
    expect(letters[0]?.reason).toMatch(
      /refused the upsert of key \[1001\] \(SQLSTATE 22P02\): column amount \(numeric\(12,2\)\): invalid input syntax for type numeric: "twelve euros"/,
    );
    expect(statements.filter((sql) => /^(ROLLBACK|SAVEPOINT)/.test(sql))).toEqual([]);
  }, 60_000);

  it('a row only the write can refuse (CHECK) keeps the earlier write of its key in the same transaction, and every other row', async () => {
    // flushRows 10: row 5 = 5.50 is written by the first flush; its later change to -1.00 violates the check.
    const { outcome, rows, letters } = await run(
      [...good(1, 20), upsert(5, '-1.00'), ...good(21, 20)],
      'dead-letter',
      10,
      { check: 'amount >= 0' },
    );
    expect(outcome.restarts).toBe(0);
    expect(rows).toEqual(Array.from({ length: 40 }, (_, i) => `${i + 1}:${i + 1}.50`));
    expect(letters.map((l) => [l.offset, l.reason.match(/SQLSTATE \w+/)?.[0]])).toEqual([['1005', 'SQLSTATE 23514']]);
  }, 60_000);
});
