/**
 * Defect: started from another directory (so with no checkpoint), a job "started fresh" and its
 * restore rolled back a prepared transaction of a checkpoint that had completed in the other
 * directory — rows lost — then hung on a row lock held by a prepared transaction of a subtask it
 * did not know. Now a fresh start that finds this job's prepared transactions refuses to roll
 * anything back and says how to resolve it; `discardSinkTransactions` resolves it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresChange } from '../../operators/sinks/postgres/postgres-options.ts';
import { postgresSink } from '../../operators/sinks/postgres/postgres-sink.ts';
import { redisSink } from '../../operators/sinks/redis/redis-sink.ts';
import { Redis } from 'ioredis';
import { sinkInstanceName } from '../../operators/sinks/two-phase-commit.ts';
import { fromCollection, type StreamEnvironment } from '../../runtime/index.ts';
import { expectFreshStartRefused, failureOf, freshStartEnvironment } from '../support/fresh-start.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';

type Row = { readonly id: number; readonly status: string };

const url = testEndpoints().databaseUrl;
const jobName = uniqueName('fresh-guard');
const table = uniqueName('fresh_guard').replace(/-/g, '_');
const work = mkdtempSync(join(tmpdir(), 'cdcflow-fresh-guard-'));
let client: pg.Client;

const gidOf = (subtaskIndex: number, checkpointId: number) =>
  `${sinkInstanceName({ jobName, sinkUid: 'pg', subtaskIndex })}:${checkpointId}`;
const prepared = async () =>
  (
    await client.query<{ gid: string }>(
      'SELECT gid FROM pg_prepared_xacts WHERE left(gid, length($1)) = $1 ORDER BY gid',
      [`${jobName}:`],
    )
  ).rows.map((r) => r.gid);

/** What a run of this job under another checkpoint folder left: checkpoint 7 prepared by subtasks 0 and 1 (holding rows 1 and 2). */
async function leaveOtherRunsTransactions(): Promise<void> {
  for (const [subtask, id] of [
    [0, 1],
    [1, 2],
  ] as const) {
    const session = new pg.Client({ connectionString: url });
    await session.connect();
    await session.query('BEGIN');
    await session.query(`INSERT INTO ${table} (id, status) VALUES ($1, 'from-checkpoint-7')`, [id]);
    await session.query(`PREPARE TRANSACTION '${gidOf(subtask, 7)}'`);
    await session.end();
  }
}

function job(dir: string, discardSinkTransactions: boolean): StreamEnvironment {
  const env = freshStartEnvironment(jobName, dir, { discardSinkTransactions, maxAttempts: 2 });
  env
    .fromSource(
      fromCollection<Row>([
        { id: 1, status: 'new' },
        { id: 2, status: 'new' },
        { id: 3, status: 'new' },
      ]),
    )
    .sinkTo(
      postgresSink({
        connectionString: url,
        table,
        primaryKey: ['id'],
        toChange: (r: Row): PostgresChange => ({ kind: 'upsert', row: r }),
        lockTimeoutMs: 2_000,
      }),
    )
    .uid('pg');
  return env;
}

beforeAll(async () => {
  client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, status text)`);
});

afterAll(async () => {
  for (const gid of await prepared()) await client.query(`ROLLBACK PREPARED '${gid}'`);
  await client.query(`DROP TABLE IF EXISTS ${table}`);
  await client.query("DELETE FROM cdcflow_sink_commits WHERE sink LIKE $1 || '%'", [jobName]).catch(() => undefined);
  await client.end();
  rmSync(work, { recursive: true, force: true });
});

describe('Redis: a fence of a run this folder does not know', () => {
  it('refuses a fresh start that would reuse checkpoint ids the fence calls applied (writes silently skipped)', async () => {
    const redisUrl = testEndpoints().redisUrl;
    const prefix = uniqueName('fresh-guard');
    const redis = new Redis(redisUrl);
    const fence = `${prefix}:__cdcflow:${sinkInstanceName({ jobName, sinkUid: 'rd', subtaskIndex: 1 })}:applied`;
    try {
      await redis.set(fence, '9');
      const env = freshStartEnvironment(jobName, join(work, 'redis'));
      env
        .fromSource(fromCollection<Row>([{ id: 1, status: 'new' }]))
        .sinkTo(redisSink({ url: redisUrl, prefix, toWrite: (r: Row) => ({ key: String(r.id), value: r.status }) }))
        .uid('rd');
      expectFreshStartRefused(await failureOf(env), [`redis fence ${fence} = checkpoint 9`]);
      expect(await redis.get(fence)).toBe('9');
    } finally {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  }, 60_000);
});

describe('the sink fence', () => {
  it('a second instance of the job (another checkpoint folder, another host) fails at start, naming the holder', async () => {
    const other = new pg.Client({ connectionString: url, application_name: 'cdcflow other-host pid 4242' });
    await other.connect();
    try {
      await other.query('SELECT pg_advisory_lock($1::int, hashtext($2))', [
        0x63646366,
        sinkInstanceName({ jobName, sinkUid: 'pg', subtaskIndex: 0 }),
      ]);
      const error = await failureOf(job(join(work, 'fenced'), false));
      expect((error as Error).message).toMatch(/is held by 'cdcflow other-host pid 4242'/);
      expect(await prepared()).toEqual([]);
    } finally {
      await other.end();
    }
  }, 60_000);
});

describe('a start with no checkpoint over prepared transactions of this job', () => {
  it('refuses to roll them back, names them and the ways out', async () => {
    await leaveOtherRunsTransactions();
    const started = Date.now();
    expectFreshStartRefused(await failureOf(job(join(work, 'elsewhere'), false)), [gidOf(0, 7), gidOf(1, 7)]);
    // Not restarted into a row-lock wait: refused at once, and nothing was rolled back.
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await prepared()).toEqual([gidOf(0, 7), gidOf(1, 7)]);
  }, 60_000);

  it("with discardSinkTransactions rolls back every subtask's leftovers and runs", async () => {
    const result = await job(join(work, 'elsewhere'), true).execute();
    expect(result.state).toBe('finished');
    expect(await prepared()).toEqual([]);
    const rows = await client.query<{ id: string; status: string }>(`SELECT id, status FROM ${table} ORDER BY id`);
    expect(rows.rows.map((r) => `${r.id}:${r.status}`)).toEqual(['1:new', '2:new', '3:new']);
  }, 60_000);
});
