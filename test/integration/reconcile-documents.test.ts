/**
 * reconcile with an Elasticsearch index and Redis keys as the sink: a Postgres source table
 * against documents shaped as jobs/orders-to-elasticsearch.ts (strict mapping, fewer fields,
 * amount as double) and jobs/orders-to-redis.ts (`<prefix>:<id>` = the row's JSON) write them.
 */
import { Client } from '@elastic/elasticsearch';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcileTables } from '../../runtime/reconcile/index.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';

const { databaseUrl: url, elasticsearchUrl, redisUrl } = testEndpoints();
const table = uniqueName('reconcile_docs').replace(/-/g, '_');
const index = uniqueName('reconcile-docs');
const prefix = uniqueName('reconcile-docs');
const db = new pg.Client({ connectionString: url });
const es = new Client({ node: elasticsearchUrl });
const redis = new Redis(redisUrl);
const ROWS = 27;

const rowOf = (i: number) => ({
  id: i,
  status: i % 2 === 0 ? 'paid' : 'pending',
  amount: (i * 1.25 - 10).toFixed(2),
  updated_at: new Date(Date.UTC(2026, 11, 4, 10, 0, i)).toISOString(),
});

describe('reconcile against Elasticsearch and Redis', () => {
  beforeAll(async () => {
    await db.connect();
    await db.query(
      `CREATE TABLE ${table} (id bigint PRIMARY KEY, status text, amount numeric(12,2), notes text, updated_at timestamptz)`,
    );
    await db.query(
      `INSERT INTO ${table} SELECT i, CASE WHEN i % 2 = 0 THEN 'paid' ELSE 'pending' END, (i * 1.25 - 10)::numeric(12,2), NULL, timestamptz '2026-12-04 10:00:00+00' + i * interval '1 second' FROM generate_series(1, ${ROWS}) i`,
    );
    await es.indices.create({
      index,
      body: {
        mappings: {
          dynamic: 'strict',
          properties: {
            id: { type: 'long' },
            status: { type: 'keyword' },
            amount: { type: 'double' },
            updated_at: { type: 'date' },
          },
        },
      },
    });
    const body = Array.from({ length: ROWS }, (_, n) => rowOf(n + 1)).flatMap((r) => [
      { index: { _index: index, _id: String(r.id) } },
      { ...r, amount: Number(r.amount) },
    ]);
    await es.bulk({ body, refresh: true });
    for (let i = 1; i <= ROWS; i++) await redis.set(`${prefix}:${i}`, JSON.stringify({ ...rowOf(i), notes: null }));
  });
  afterAll(async () => {
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    await es.indices.delete({ index }, { ignore: [404] });
    await es.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('Elasticsearch: equal on the fields the mapping holds, then finds a changed, a missing and an extra document', async () => {
    const equal = await reconcileTables({
      source: { url, table },
      sink: { kind: 'elasticsearch', url: elasticsearchUrl, index },
      chunk: 10,
    });
    expect(equal).toMatchObject({ equal: true, sourceRows: ROWS, sinkRows: ROWS, notInSink: ['notes'] });
    await es.update({ index, id: '4', body: { doc: { status: 'refunded' } } });
    await es.delete({ index, id: '9' });
    await es.index({ index, id: '500', body: { id: 500, status: 'ghost' } });
    await es.indices.refresh({ index });
    const report = await reconcileTables({
      source: { url, table },
      sink: { kind: 'elasticsearch', url: elasticsearchUrl, index },
      chunk: 10,
    });
    expect(report).toMatchObject({
      equal: false,
      missing: 1,
      extra: 1,
      differing: 1,
      differingByColumn: { status: 1 },
    });
    expect(report.samples.missing).toEqual([['9']]);
  });

  it('Redis: equal on every column, then finds a changed, a missing and an extra key', async () => {
    const equal = await reconcileTables({
      source: { url, table },
      sink: { kind: 'redis', url: redisUrl, prefix },
      chunk: 10,
    });
    expect(equal).toMatchObject({ equal: true, sourceRows: ROWS, sinkRows: ROWS, notInSink: [] });
    await redis.set(`${prefix}:3`, JSON.stringify({ ...rowOf(3), amount: '999.00', notes: null }));
    await redis.del(`${prefix}:20`);
    await redis.set(`${prefix}:100`, JSON.stringify({ id: 100 }));
    const report = await reconcileTables({
      source: { url, table },
      sink: { kind: 'redis', url: redisUrl, prefix },
      chunk: 10,
    });
    expect(report).toMatchObject({
      equal: false,
      missing: 1,
      extra: 1,
      differing: 1,
      differingByColumn: { amount: 1 },
    });
    expect(report.samples.extra).toEqual([['100']]);
  });
});
