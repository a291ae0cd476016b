/**
 * reconcile against real Postgres tables: keyset chunks smaller than the table, a sink that stores
 * columns with other types (amount as text, timestamps as ISO text), and the CLI's exit codes.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcileTables } from '../../runtime/reconcile/index.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';

const run = promisify(execFile);
const url = testEndpoints().databaseUrl;
const source = uniqueName('reconcile_src').replace(/-/g, '_');
const sink = uniqueName('reconcile_sink').replace(/-/g, '_');
const db = new pg.Client({ connectionString: url });

describe('reconcile on Postgres tables', () => {
  beforeAll(async () => {
    await db.connect();
    await db.query(
      `CREATE TABLE ${source} (id bigint PRIMARY KEY, status text, amount numeric(12,2), currency char(3), notes text, updated_at timestamptz)`,
    );
    // The sink spells the same data differently: that is not a difference.
    await db.query(
      `CREATE TABLE ${sink} (id bigint PRIMARY KEY, status text, amount text, currency text, notes text, updated_at text, lsn bigint)`,
    );
    await db.query(
      `INSERT INTO ${source} SELECT i, 'paid', (i * 1.5 - 40)::numeric(12,2), 'EUR', repeat('x', i), timestamptz '2026-12-04 10:00:00+01' + i * interval '1 second' FROM generate_series(1, 53) i`,
    );
    await db.query(
      `INSERT INTO ${sink} SELECT id, status, amount::text || '0', currency, notes, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 7 FROM ${source}`,
    );
  });
  afterAll(async () => {
    await db.query(`DROP TABLE IF EXISTS ${source}, ${sink}`);
    await db.end();
  });

  it('finds equal tables equal, chunk by chunk', async () => {
    const report = await reconcileTables({ source: { url, table: source }, sink: { url, table: sink }, chunk: 7 });
    expect(report).toMatchObject({ equal: true, sourceRows: 53, sinkRows: 53, matching: 53, key: ['id'] });
    expect(report.columns).toEqual(['status', 'amount', 'currency', 'notes', 'updated_at']);
  });

  it('reports missing, extra and differing rows, and the CLI exits 1 (0 when equal)', async () => {
    const cli = [
      '--import',
      'tsx',
      'scripts/reconcile.ts',
      '--source',
      url,
      '--source-table',
      source,
      '--sink-table',
      sink,
      '--chunk',
      '10',
    ];
    const equal = await run(process.execPath, cli);
    expect(equal.stdout).toMatch(/^EQUAL: 53 rows/);
    await db.query(`DELETE FROM ${sink} WHERE id IN (5, 40)`);
    await db.query(`INSERT INTO ${sink} (id, status) VALUES (1000, 'ghost')`);
    await db.query(`UPDATE ${sink} SET amount = '-1.00' WHERE id = 12`);
    await db.query(`UPDATE ${sink} SET notes = NULL WHERE id = 30`);
    const report = await reconcileTables({ source: { url, table: source }, sink: { url, table: sink }, chunk: 10 });
    expect(report).toMatchObject({
      equal: false,
      missing: 2,
      extra: 1,
      differing: 2,
      differingByColumn: { amount: 1, notes: 1 },
    });
    expect(report.samples.missing).toEqual([['5'], ['40']]);
    const failed = await run(process.execPath, cli).then(
      () => undefined,
      (error: { code: number; stdout: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stdout).toMatch(/DIFFERENT: 2 missing from the sink, 1 extra in the sink, 2 differing/);
    expect(failed?.stdout).toMatch(/differs \(12\): amount source="-22\.00" sink="-1\.00"/);
  });

  it('exits 2 with a clear message when a compared column is missing in the sink', async () => {
    const failed = await run(process.execPath, [
      '--import',
      'tsx',
      'scripts/reconcile.ts',
      '--source',
      url,
      '--source-table',
      sink,
      '--sink-table',
      source,
    ]).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toMatch(/column\(s\) missing: lsn \(sink\); leave them out with --ignore/);
  });
});
