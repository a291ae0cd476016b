/**
 * The late events report's query (jobs/late-events-report.ts `reportQuery`) on real Postgres: a
 * window whose every event came late has a late count and no window row; the report must still
 * show it. The old documented query (`windows LEFT JOIN late_counts`) lost it.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportQuery, reportTablesDdl } from '../../jobs/late-events-report.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';

const name = (prefix: string) => uniqueName(prefix).replace(/-/g, '_');

describe('late events report query (FULL OUTER JOIN) on Postgres', () => {
  const db = new pg.Client({ connectionString: testEndpoints().databaseUrl });
  const options = {
    brokers: [],
    lateTopic: 'unused',
    windowsTable: name('q_windows'),
    lateCountsTable: name('q_late'),
  };
  beforeAll(async () => {
    await db.connect();
    for (const ddl of reportTablesDdl(options)) await db.query(ddl);
    await db.query(
      `INSERT INTO ${options.windowsTable} VALUES ('2026-01-01T00:00:00Z', '2026-01-01T00:01:00Z', 'paid', 10.5, 2), ('2026-01-01T00:01:00Z', '2026-01-01T00:02:00Z', 'paid', 3, 1)`,
    );
    // 00:00 paid: on time and late; 00:02 paid and 00:00 shipped: late only (no window row).
    await db.query(
      `INSERT INTO ${options.lateCountsTable} VALUES ('2026-01-01T00:00:00Z', '2026-01-01T00:01:00Z', 'paid', 1), ('2026-01-01T00:02:00Z', '2026-01-01T00:03:00Z', 'paid', 4), ('2026-01-01T00:00:00Z', '2026-01-01T00:01:00Z', 'shipped', 2)`,
    );
  });
  afterAll(async () => {
    for (const t of [options.windowsTable, options.lateCountsTable]) await db.query(`DROP TABLE IF EXISTS ${t}`);
    await db.end();
  });

  it('shows every late count, also of windows without an on-time row', async () => {
    const { rows } = await db.query<{
      window_start: Date;
      window_end: Date;
      status: string;
      sum: string | null;
      count: string | null;
      late_count: string;
    }>(reportQuery(options));
    const view = rows.map((r) => [
      r.window_start.toISOString().slice(11, 16),
      r.window_end.toISOString().slice(11, 16),
      r.status,
      r.sum,
      r.count,
      Number(r.late_count),
    ]);
    expect(view).toEqual([
      ['00:00', '00:01', 'paid', '10.5', '2', 1],
      ['00:00', '00:01', 'shipped', null, null, 2],
      ['00:01', '00:02', 'paid', '3', '1', 0],
      ['00:02', '00:03', 'paid', null, null, 4],
    ]);
    expect(view.reduce((n, r) => n + (r[5] as number), 0)).toBe(7);
    // The query it replaces: two of the three late rows' counts (6 of 7 late events) vanish.
    const old = await db.query<{ late_count: string | null }>(
      `SELECT late_count FROM ${options.windowsTable} LEFT JOIN ${options.lateCountsTable} USING (window_start, status)`,
    );
    expect(old.rows.reduce((n, r) => n + Number(r.late_count ?? 0), 0)).toBe(1);
  });
});
