/**
 * Exactly-once into Postgres across Postgres outages. jobs/orders-to-postgres.ts (Debezium orders
 * → keyBy id → upsert → two-phase Postgres sink, 1 s checkpoints) reaches Postgres through a TCP
 * proxy (test/support/tcp-proxy.ts), never directly. While the job consumes and writes:
 *  1. the proxy lets a PREPARE TRANSACTION through, swallows Postgres's reply and cuts every
 *     connection (in use or not), refusing new ones for CDCFLOW_OUTAGE_MS (default 30 s): the
 *     prepared transaction is an orphan no completed checkpoint records, which the recovery must
 *     roll back (its records are replayed from the checkpoint before);
 *  2. later, a 5 s cut right after the sink reported `prepared`, before its COMMIT PREPARED: the
 *     recovery (or the retried commit) must commit it, once.
 * The job process must ride both out by itself (failed attempts, restarts with back-off, no exit)
 * and end with exactly the projection oracle's rows and no prepared transaction left.
 *
 * The shared Postgres is never touched: only connections through the proxy are cut.
 * CDCFLOW_CHAOS_VERBOSE=1 echoes the job's output.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { projectionOracle } from '../../scripts/workload/oracle.ts';
import type { WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { JobProcess } from '../support/job-process.ts';
import { dropOrdersTable, readOrdersTable, tableDifferences } from '../support/orders-check.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { WorkloadFeeder } from '../support/workload-feeder.ts';

const OUTAGE_MS = Number(process.env['CDCFLOW_OUTAGE_MS'] ?? 30_000);
const SHORT_OUTAGE_MS = 5_000;
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
  await dropOrdersTable(databaseUrl, table, jobName);
});

/** The database URL with host and port replaced by the proxy's. */
function throughProxy(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.hostname = '127.0.0.1';
  parsed.port = String(port);
  return parsed.toString();
}

/** Polls until the table holds the oracle's rows and no prepared transaction is left (or `timeoutMs`). */
async function waitForOracle(
  oracle: ReturnType<typeof projectionOracle>,
  timeoutMs: number,
): Promise<Awaited<ReturnType<typeof readOrdersTable>>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await readOrdersTable(databaseUrl, table, jobName);
    const { lost, extra, stale } = tableDifferences(state.rows, oracle);
    if ((lost.length + extra.length + stale.length === 0 && state.prepared.length === 0) || Date.now() > deadline)
      return state;
    if (job !== undefined && !job.running) return state;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

describe('orders → Postgres (two-phase) across a Postgres outage', () => {
  it(`recovers by itself from ${OUTAGE_MS / 1000} s without Postgres and ends with exactly the oracle's rows`, async () => {
    const target = new URL(databaseUrl);
    proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
    say(
      `topic ${topic}, table ${table}, proxy 127.0.0.1:${proxy.port} → ${target.host}, outage ${OUTAGE_MS} ms, work dir ${workDir}`,
    );
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
    const echo =
      process.env['CDCFLOW_CHAOS_VERBOSE'] === '1' ? (line: string) => console.log(`  | ${line}`) : undefined;
    const feeder = new WorkloadFeeder(brokers, topic, WORKLOAD);
    await feeder.open();
    const events = WORKLOAD.events ?? 0;
    await feeder.feed(Math.floor(events / 4));

    const started = Date.now();
    job = JobProcess.start({
      file: 'jobs/orders-to-postgres.ts',
      env,
      ...(echo === undefined ? {} : { onLine: echo }),
    });
    await job.waitFor(COMMITTED, 90_000);
    // Keep the job busy through the cuts: more input goes in while it runs.
    let feeding = feeder.feed(Math.floor(events / 4));
    // Outage 1: Postgres executes a PREPARE TRANSACTION, the reply never arrives, the link is cut.
    // The prepared transaction is an orphan: no completed checkpoint records it.
    const link = proxy;
    const first = await outage(job, link, OUTAGE_MS, started, () =>
      withTimeout(link.cutOnReplyTo('PREPARE TRANSACTION'), 60_000, 'no PREPARE TRANSACTION went through the proxy'),
    );
    await feeding;
    feeding = feeder.feed(Math.floor(events / 4));
    // Outage 2 (short): right after a PREPARE the sink reported, before its COMMIT PREPARED.
    await job.waitFor(PREPARED, 60_000, job.lines.length);
    const second = await outage(job, link, SHORT_OUTAGE_MS, started, () => link.cut());
    await feeding;
    await feeder.feedRest();
    await feeder.close();

    const oracle = projectionOracle(generateWorkload(WORKLOAD));
    const { rows, prepared } = await waitForOracle(oracle, 120_000);
    const caughtUpAt = Date.now();
    const restoredAt = second.restoredAt;
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
    say(
      `${failures.length} failed attempts (restarts observed), the highest restart number ${Math.max(0, ...failures.map((f) => f.restart))}; reasons: ${[...new Set(failures.map((f) => f.reason.slice(0, 120)))].join(' | ')}`,
    );
    say(
      `on restore: ${restoreCommits} recorded transactions committed, ${restoreFound} found already committed, ${rolledBack} unrecorded ones rolled back; proxy accepted ${proxy.stats.accepted} connections`,
    );
    say(
      `caught up ${((caughtUpAt - restoredAt) / 1000).toFixed(1)} s after Postgres came back from the second cut; ${feeder.written} messages in ${((caughtUpAt - started) / 1000).toFixed(1)} s`,
    );
    say(
      `table ${rows.size} rows, oracle ${oracle.size}: lost ${lost.length}, extra ${extra.length}, stale ${stale.length}; prepared left ${prepared.length}`,
    );
    expect(lost.slice(0, 20), `lost ids (of ${lost.length})\n${job.tail()}`).toEqual([]);
    expect(extra.slice(0, 20), `extra ids (of ${extra.length})`).toEqual([]);
    expect(stale.slice(0, 20), `stale rows (of ${stale.length})`).toEqual([]);
    expect(prepared).toEqual([]);
    expect(rows.size).toBe(oracle.size);
    for (const o of [first, second]) expect(o.destroyed, 'a cut destroyed no connection in use').toBeGreaterThan(0);
    expect(first.failures, 'the outage caused no failed attempt').toBeGreaterThan(0);
    expect(rolledBack, 'the orphan of the cut PREPARE was not rolled back').toBeGreaterThan(0);
    passed = true;
  });
});

interface OutageReport {
  readonly destroyed: number;
  readonly failures: number;
  readonly restoredAt: number;
}

/** Cuts the link with `cut`, waits `ms`, restores it, waits for the job's first commit after that; prints what it saw. */
async function outage(
  jobProcess: JobProcess,
  link: TcpProxy,
  ms: number,
  started: number,
  cut: () => Promise<void>,
): Promise<OutageReport> {
  const destroyedBefore = link.stats.destroyed;
  const linesAtCut = jobProcess.lines.length;
  await cut();
  const cutAt = Date.now();
  const lastWord = jobProcess.lines.filter((l) => PREPARED.test(l) || COMMITTED.test(l)).at(-1) ?? '-';
  await new Promise((resolve) => setTimeout(resolve, ms));
  expect(jobProcess.running, `the job gave up during the outage\n${jobProcess.tail()}`).toBe(true);
  await link.restore();
  const restoredAt = Date.now();
  const linesAtRestore = jobProcess.lines.length;
  const commit = await jobProcess.waitFor(COMMITTED, 120_000, linesAtRestore);
  const failures = jobProcess.lines.slice(linesAtCut).filter((l) => ATTEMPT_FAILED.test(l)).length;
  say(
    `cut ${((cutAt - started) / 1000).toFixed(1)} s into the job (last sink line '${lastWord.replace(/^.*\] /, '')}'), ` +
      `${link.stats.destroyed - destroyedBefore} connections destroyed, ${ms / 1000} s down, ${failures} failed attempts meanwhile; ` +
      `first commit ${((Date.now() - restoredAt) / 1000).toFixed(1)} s after the link was back ('${commit[0]}')`,
  );
  return { destroyed: link.stats.destroyed - destroyedBefore, failures, restoredAt };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
