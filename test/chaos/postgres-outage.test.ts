/**
 * Exactly-once into Postgres across a 30 s database outage. jobs/orders-to-postgres.ts (Debezium
 * orders → keyBy id → upsert → two-phase Postgres sink, 1 s checkpoints) reaches Postgres through
 * a TCP proxy (test/support/tcp-proxy.ts), never directly. While the job consumes and writes, the
 * proxy is cut right after the sink printed `prepared` — between PREPARE TRANSACTION and COMMIT
 * PREPARED — destroying every connection in use and refusing new ones for CDCFLOW_OUTAGE_MS
 * (default 30 s); then it listens again. The job process must ride it out by itself (failed
 * attempts, restarts with back-off, no exit), commit or roll back the prepared transaction the cut
 * left behind, and end with exactly the projection oracle's rows and no prepared transaction left.
 *
 * The shared Postgres is never touched: only connections through the proxy are cut.
 * CDCFLOW_CHAOS_VERBOSE=1 echoes the job's output.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { projectionOracle } from '../../scripts/workload/oracle.ts';
import type { WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { JobProcess } from '../support/job-process.ts';
import { readOrdersTable, tableDifferences } from '../support/orders-check.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { WorkloadFeeder } from '../support/workload-feeder.ts';

const OUTAGE_MS = Number(process.env['CDCFLOW_OUTAGE_MS'] ?? 30_000);
const WORKLOAD: WorkloadOptions = { keys: 4_000, events: 40_000, duplicateFraction: 0.02, seed: 20_251_201 };

const COMMITTED = /checkpoint (\d+) committed: (\d+) rows/;
const PREPARED = /checkpoint (\d+) prepared: (\d+) rows/;
const ATTEMPT_FAILED = /attempt failed \((.*)\); restart (\d+)\/(\d+)/;
const RESTORE_COMMITTED = /restore: committed /;
const RESTORE_FOUND = /restore: found already committed /;
const ROLLED_BACK = /restore: rolled back (\d+) prepared/;

const say = (line: string) => console.log(`[outage postgres] ${line}`);
const { kafkaBrokers, databaseUrl } = testEndpoints();
const brokers = kafkaBrokers.split(',');
const topic = uniqueName('outage-pg-orders');
const table = uniqueName('outage_orders').replace(/-/g, '_');
const jobName = uniqueName('outage-orders-to-postgres');
const workDir = mkdtempSync(join(tmpdir(), 'cdcflow-outage-pg-'));
let proxy: TcpProxy | undefined;
let job: JobProcess | undefined;
let passed = false;

afterAll(async () => {
  await job?.kill();
  await proxy?.close();
  if (passed) rmSync(workDir, { recursive: true, force: true });
  else say(`checkpoints, job state and table ${table} kept (${workDir})`);
  const admin = new Kafka({ clientId: 'outage-cleanup', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
  if (!passed) return;
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  await db.query(`drop table if exists ${table}`);
  await db.query("delete from cdcflow_sink_commits where sink like $1 || ':%'", [jobName]).catch(() => undefined);
  await db.end();
});

/** The database URL with host and port replaced by the proxy's. */
function throughProxy(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.hostname = '127.0.0.1';
  parsed.port = String(port);
  return parsed.toString();
}

/** Polls until the table holds the oracle's rows and no prepared transaction is left (or `timeoutMs`). */
async function waitForOracle(oracle: ReturnType<typeof projectionOracle>, timeoutMs: number): Promise<Awaited<ReturnType<typeof readOrdersTable>>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await readOrdersTable(databaseUrl, table, jobName);
    const { lost, extra, stale } = tableDifferences(state.rows, oracle);
    if ((lost.length + extra.length + stale.length === 0 && state.prepared.length === 0) || Date.now() > deadline) return state;
    if (job !== undefined && !job.running) return state;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

describe('orders → Postgres (two-phase) across a Postgres outage', () => {
  it(`recovers by itself from ${OUTAGE_MS / 1000} s without Postgres and ends with exactly the oracle's rows`, async () => {
    const target = new URL(databaseUrl);
    proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
    say(`topic ${topic}, table ${table}, proxy 127.0.0.1:${proxy.port} → ${target.host}, outage ${OUTAGE_MS} ms, work dir ${workDir}`);
    const env = {
      KAFKA_BROKERS: kafkaBrokers,
      DATABASE_URL: throughProxy(databaseUrl, proxy.port),
      CDCFLOW_TOPIC: topic,
      CDCFLOW_GROUP_ID: uniqueName('outage-pg'),
      CDCFLOW_JOB_NAME: jobName,
      CDCFLOW_PG_TABLE: table,
      CDCFLOW_CHECKPOINT_DIR: join(workDir, 'checkpoints'),
      CDCFLOW_STATE_DIR: join(workDir, 'state'),
      CDCFLOW_SESSION_TIMEOUT_MS: '6000',
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
    };
    const echo = process.env['CDCFLOW_CHAOS_VERBOSE'] === '1' ? (line: string) => console.log(`  | ${line}`) : undefined;
    const feeder = new WorkloadFeeder(brokers, topic, WORKLOAD);
    await feeder.open();
    const events = WORKLOAD.events ?? 0;
    await feeder.feed(Math.floor(events / 4));

    const started = Date.now();
    job = JobProcess.start({ file: 'jobs/orders-to-postgres.ts', env, ...(echo === undefined ? {} : { onLine: echo }) });
    await job.waitFor(COMMITTED, 90_000);
    // Keep the job busy through the cut: the rest of the first half goes in while it runs.
    const feeding = feeder.feed(Math.floor(events / 4));
    const linesBefore = job.lines.length;
    await job.waitFor(PREPARED, 60_000, linesBefore);
    await proxy.cut();
    const cutAt = Date.now();
    const inUse = proxy.stats.destroyed;
    say(`cut after ${((cutAt - started) / 1000).toFixed(1)} s, right after '${job.lines.filter((l) => PREPARED.test(l)).at(-1) ?? ''}': ${inUse} connections destroyed`);
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
    expect(job.running, `the job gave up during the outage\n${job.tail()}`).toBe(true);
    await proxy.restore();
    const restoredAt = Date.now();
    const linesAtRestore = job.lines.length;
    await feeding;
    await feeder.feedRest();
    await feeder.close();
    const firstCommit = await job.waitFor(COMMITTED, 120_000, linesAtRestore);
    const recoveredAt = Date.now();
    say(`Postgres back after ${((restoredAt - cutAt) / 1000).toFixed(1)} s; first commit after it ${((recoveredAt - restoredAt) / 1000).toFixed(1)} s later ('${firstCommit[0]}')`);

    const oracle = projectionOracle(generateWorkload(WORKLOAD));
    const { rows, prepared } = await waitForOracle(oracle, 120_000);
    const caughtUpAt = Date.now();
    expect(job.running, `the job exited\n${job.tail()}`).toBe(true);
    await job.kill();

    const failures = job.lines.flatMap((l) => {
      const m = ATTEMPT_FAILED.exec(l);
      return m === null ? [] : [{ reason: m[1] ?? '', restart: Number(m[2]) }];
    });
    const restoreCommits = job.lines.filter((l) => RESTORE_COMMITTED.test(l)).length;
    const restoreFound = job.lines.filter((l) => RESTORE_FOUND.test(l)).length;
    const rolledBack = job.lines.reduce((n, l) => n + Number(ROLLED_BACK.exec(l)?.[1] ?? 0), 0);
    const { lost, extra, stale } = tableDifferences(rows, oracle);
    say(`${failures.length} failed attempts (restarts observed), the highest restart number ${Math.max(0, ...failures.map((f) => f.restart))}; reasons: ${[...new Set(failures.map((f) => f.reason.slice(0, 120)))].join(' | ')}`);
    say(`on restore: ${restoreCommits} recorded transactions committed, ${restoreFound} found already committed, ${rolledBack} unrecorded ones rolled back; proxy accepted ${proxy.stats.accepted} connections`);
    say(`caught up ${((caughtUpAt - restoredAt) / 1000).toFixed(1)} s after Postgres came back; ${feeder.written} messages in ${((caughtUpAt - started) / 1000).toFixed(1)} s`);
    say(`table ${rows.size} rows, oracle ${oracle.size}: lost ${lost.length}, extra ${extra.length}, stale ${stale.length}; prepared left ${prepared.length}`);
    expect(lost.slice(0, 20), `lost ids (of ${lost.length})\n${job.tail()}`).toEqual([]);
    expect(extra.slice(0, 20), `extra ids (of ${extra.length})`).toEqual([]);
    expect(stale.slice(0, 20), `stale rows (of ${stale.length})`).toEqual([]);
    expect(prepared).toEqual([]);
    expect(rows.size).toBe(oracle.size);
    expect(inUse, 'the cut destroyed no connection in use').toBeGreaterThan(0);
    expect(failures.length, 'the outage caused no failed attempt').toBeGreaterThan(0);
    passed = true;
  });
});
