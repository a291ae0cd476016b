import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';

// The two-phase Postgres sink rests on exactly these server behaviours.
describe('postgres (real server)', () => {
  const table = uniqueName('smoke').replace(/-/g, '_');
  let client: pg.Client;

  beforeAll(async () => {
    client = new pg.Client({ connectionString: testEndpoints().databaseUrl });
    await client.connect();
    await client.query(`create table ${table} (id int primary key, v text)`);
  });
  afterAll(async () => {
    await client.query(`drop table if exists ${table}`);
    await client.end();
  });

  it('runs with logical WAL and prepared transactions enabled', async () => {
    const { rows } = await client.query<{ wal: string; prepared: number }>(
      "select current_setting('wal_level') as wal, current_setting('max_prepared_transactions')::int as prepared",
    );
    expect(rows[0]).toEqual({ wal: 'logical', prepared: expect.any(Number) as number });
    expect(rows[0]?.prepared).toBeGreaterThan(0);
  });

  it('keeps a prepared transaction invisible until COMMIT PREPARED, even from another session', async () => {
    const gid = `${table}:commit`;
    await client.query('begin');
    await client.query(`insert into ${table} values (1, 'a')`);
    await client.query(`prepare transaction '${gid}'`);
    const other = new pg.Client({ connectionString: testEndpoints().databaseUrl });
    await other.connect();
    try {
      expect((await other.query(`select * from ${table}`)).rowCount).toBe(0);
      const prepared = await other.query('select gid from pg_prepared_xacts where gid = $1', [gid]);
      expect(prepared.rowCount).toBe(1);
      // Any session may finish it: that is what lets a restarted job commit its predecessor's work.
      await other.query(`commit prepared '${gid}'`);
    } finally {
      await other.end();
    }
    expect((await client.query(`select v from ${table} where id = 1`)).rows).toEqual([{ v: 'a' }]);
  });

  it('discards a prepared transaction on ROLLBACK PREPARED', async () => {
    const gid = `${table}:rollback`;
    await client.query('begin');
    await client.query(`insert into ${table} values (2, 'b')`);
    await client.query(`prepare transaction '${gid}'`);
    await client.query(`rollback prepared '${gid}'`);
    expect((await client.query(`select * from ${table} where id = 2`)).rowCount).toBe(0);
    expect((await client.query('select 1 from pg_prepared_xacts where gid = $1', [gid])).rowCount).toBe(0);
  });
});
