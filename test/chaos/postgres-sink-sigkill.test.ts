/**
 * Exactly-once into Postgres under SIGKILL. jobs/orders-to-postgres.ts (Debezium orders → keyBy
 * id → upsert → two-phase Postgres sink, 1 s checkpoints) runs in a child process and is
 * SIGKILLed again and again while the workload is still being written: half of the kills at
 * random moments, half 0–150 ms after the sink printed `prepared`: between PREPARE TRANSACTION and
 * COMMIT PREPARED, before or after the checkpoint became durable. Each restart restores the latest
 * checkpoint, commits the prepared transactions it recorded and rolls back the others. A last
 * bounded run reads to the end; then the table must equal the projection oracle: no row lost, none
 * extra or stale, and no prepared transaction left behind.
 *
 * CDCFLOW_CHAOS_KILLS (default 10) and CDCFLOW_CHAOS_SEED replay a run; CDCFLOW_CHAOS_VERBOSE=1
 * echoes the job's output.
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
import { readOrdersTable, tableDifferences } from '../support/orders-check.ts';
import { JobProcess, killRepeatedly, type JobProcessOptions, type KillLoopReport } from '../support/job-process.ts';
import { WorkloadFeeder } from '../support/workload-feeder.ts';

const KILLS = Math.max(2, Number(process.env['CDCFLOW_CHAOS_KILLS'] ?? 10));
const SEED = Number(process.env['CDCFLOW_CHAOS_SEED'] ?? Math.floor(Math.random() * 1_000_000));
const WORKLOAD: WorkloadOptions = { keys: 5_000, events: 60_000, duplicateFraction: 0.02, seed: 20_251_124 };
const SESSION_TIMEOUT_MS = 6_000;

const COMMITTED = /checkpoint \d+ committed: \d+ rows/;
const PREPARED = /checkpoint \d+ prepared: \d+ rows/;
const RESTORING = /restoring from (checkpoint|savepoint) \d+/;
const RESTORE_COMMITTED = /restore: committed /;
const RESTORE_FOUND = /restore: found already committed /;
const ROLLED_BACK = /restore: rolled back (\d+) prepared/;

const say = (line: string) => console.log(`[chaos postgres-sink] ${line}`);
const { kafkaBrokers, databaseUrl } = testEndpoints();
const brokers = kafkaBrokers.split(',');
const topic = uniqueName('chaos-pg-orders');
const table = uniqueName('chaos_orders').replace(/-/g, '_');
const jobName = uniqueName('chaos-orders-to-postgres');
const workDir = mkdtempSync(join(tmpdir(), 'cdcflow-chaos-pg-'));
let passed = false;

afterAll(async () => {
  if (passed) rmSync(workDir, { recursive: true, force: true });
  else say(`checkpoints, job state and table ${table} kept (${workDir})`);
  const admin = new Kafka({ clientId: 'chaos-cleanup', brokers, logLevel: logLevel.NOTHING }).admin();
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

describe('orders → Postgres (two-phase) under SIGKILL', () => {
  it(`ends with exactly the projection oracle's rows after ${KILLS} kills`, async () => {
    say(`seed ${SEED} (CDCFLOW_CHAOS_SEED), ${KILLS} kills (CDCFLOW_CHAOS_KILLS), topic ${topic}, table ${table}, work dir ${workDir}`);
    const env = {
      KAFKA_BROKERS: kafkaBrokers,
      DATABASE_URL: databaseUrl,
      CDCFLOW_TOPIC: topic,
      CDCFLOW_GROUP_ID: uniqueName('chaos-pg'),
      CDCFLOW_JOB_NAME: jobName,
      CDCFLOW_PG_TABLE: table,
      CDCFLOW_CHECKPOINT_DIR: join(workDir, 'checkpoints'),
      CDCFLOW_STATE_DIR: join(workDir, 'state'),
      CDCFLOW_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS),
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
    };
    const echo = process.env['CDCFLOW_CHAOS_VERBOSE'] === '1' ? (line: string) => console.log(`  | ${line}`) : undefined;
    const job: JobProcessOptions = { file: 'jobs/orders-to-postgres.ts', env, ...(echo === undefined ? {} : { onLine: echo }) };

    const feeder = new WorkloadFeeder(brokers, topic, WORKLOAD);
    await feeder.open();
    const slice = Math.ceil(((WORKLOAD.events ?? 0) * 1.1) / KILLS);
    const feeding: Promise<void>[] = [];
    const beforeStart = () => void feeding.push(feeder.feed(slice));
    const started = Date.now();
    const reports: KillLoopReport[] = [];
    try {
      // Half the kills anywhere (mid-batch, mid-checkpoint, mid-restore) ...
      const anywhere = Math.ceil(KILLS / 2);
      reports.push(await killRepeatedly({ job, kills: anywhere, seed: SEED, running: COMMITTED, restoring: RESTORING, beforeStart, log: say }));
      // ... and half right after a PREPARE, before its checkpoint's COMMIT PREPARED.
      reports.push(
        await killRepeatedly({ job, kills: KILLS - anywhere, seed: SEED + 1, running: PREPARED, restoring: RESTORING, runningDelayMs: [0, 150], restoreKillShare: 0, beforeStart, log: say }),
      );
    } finally {
      await Promise.allSettled(feeding);
    }
    await Promise.all(feeding);
    await feeder.feedRest();
    await feeder.close();

    const final = JobProcess.start({ ...job, env: { ...env, CDCFLOW_BOUNDED: '1' } });
    const exit = await final.waitForExit(240_000);
    expect(exit, `the final bounded run failed\n${final.tail()}`).toEqual({ code: 0, signal: null });

    const processes = [...reports.flatMap((r) => r.processes), final];
    const lines = processes.flatMap((p) => p.lines);
    const restoreCommits = lines.filter((l) => RESTORE_COMMITTED.test(l)).length;
    const restoreFound = lines.filter((l) => RESTORE_FOUND.test(l)).length;
    const rolledBack = lines.reduce((n, l) => n + Number(ROLLED_BACK.exec(l)?.[1] ?? 0), 0);
    const killedPrepared = reports[1]?.processes.filter((p) => {
      const last = p.lines.filter((l) => PREPARED.test(l) || COMMITTED.test(l)).at(-1);
      return last !== undefined && PREPARED.test(last);
    }).length;

    const oracle = projectionOracle(generateWorkload(WORKLOAD));
    const { rows, prepared } = await readOrdersTable(databaseUrl, table, jobName);
    const { lost, extra, stale } = tableDifferences(rows, oracle);
    say(
      `${KILLS} kills in ${((Date.now() - started) / 1000).toFixed(1)} s, ${feeder.written} messages; ` +
        `${killedPrepared ?? 0} processes died with a prepared transaction as their last word; on restore: ${restoreCommits} recorded transactions committed, ` +
        `${restoreFound} found already committed, ${rolledBack} unrecorded ones rolled back`,
    );
    say(`table ${rows.size} rows, oracle ${oracle.size}: lost ${lost.length}, extra (duplicated or resurrected) ${extra.length}, stale ${stale.length}; prepared left ${prepared.length}`);
    expect(lost.slice(0, 20), `lost ids (of ${lost.length})`).toEqual([]);
    expect(extra.slice(0, 20), `extra ids (of ${extra.length})`).toEqual([]);
    expect(stale.slice(0, 20), `stale rows (of ${stale.length})`).toEqual([]);
    expect(prepared).toEqual([]);
    expect(rows.size).toBe(oracle.size);
    expect(restoreCommits + restoreFound + rolledBack).toBeGreaterThan(0);
    passed = true;
  });
});
