/**
 * Exactly-once state under SIGKILL. The reference projection job (jobs/orders-projection.ts:
 * Debezium orders → keyBy id → upsert in RocksDB, 1 s checkpoints) runs in a child process over
 * workload S with replayed duplicates on a 6-partition topic, and is SIGKILLed at random moments
 * — mid-batch, mid-checkpoint, mid-restore — and restarted from its latest checkpoint each time,
 * with the same consumer group, while the workload is still being written. Then it reads to the
 * end (bounded) and finishes with a final savepoint.
 *
 * Two checks, both on the upsert table *as stored in checkpoint storage*:
 *  - after every kill, the checkpoint the next start restores holds exactly the projection oracle
 *    of what it says was read (per partition, the records before its recorded offset) — state and
 *    offsets agree, so nothing is lost or applied beyond them (the LSN guard could hide the latter
 *    in the end state, not here);
 *  - the final savepoint has read every record and equals the projection oracle of the whole
 *    workload row by row: every live row identical, every deleted id a tombstone at its delete's
 *    LSN, nothing else.
 *
 * The same run at parallelism 2 (CDCFLOW_PARALLELISM=2: two worker threads, partitions p % 2 == i
 * each, the upsert behind the keyed exchange, one SIGKILL takes both threads) with fewer kills
 * (CDCFLOW_CHAOS_PARALLEL_KILLS, default 4; `npm run chaos` runs CDCFLOW_CHAOS_KILLS).
 *
 * CDCFLOW_CHAOS_KILLS (default 10; `npm run chaos` sets 30) and CDCFLOW_CHAOS_SEED (kill moments;
 * printed on every run) replay a run; CDCFLOW_CHAOS_VERBOSE=1 echoes the job's output;
 * CDCFLOW_CHAOS_JOB runs another job file with the same contract through the loop (e.g. a mutant
 * whose source records offsets a few records off, to see both checks fail).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { projectionOracle, type OracleRecord } from '../../scripts/workload/oracle.ts';
import type { OrderRow } from '../../scripts/workload/orders-model.ts';
import { WORKLOAD_PRESETS, type WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { loadUpsertState, type LoadedUpsertState } from '../support/checkpoint-state.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { JobProcess, killRepeatedly } from '../support/job-process.ts';
import { WorkloadFeeder } from '../support/workload-feeder.ts';
import { envelopePosition } from '../../scripts/workload/commit-position.ts';
import type { ChangePosition } from '../../state/change-position.ts';

const KILLS = Number(process.env['CDCFLOW_CHAOS_KILLS'] ?? 10);
const PARALLEL_KILLS = Number(
  process.env['CDCFLOW_CHAOS_PARALLEL_KILLS'] ?? (process.env['CDCFLOW_CHAOS_KILLS'] === undefined ? 4 : KILLS),
);
const SEED = Number(process.env['CDCFLOW_CHAOS_SEED'] ?? Math.floor(Math.random() * 1_000_000));
const WORKLOAD: WorkloadOptions = { ...WORKLOAD_PRESETS.S, duplicateFraction: 0.02, seed: 20_251_123 };
/** The broker's floor by default (group.min.session.timeout.ms); bounds each restart's wait for the killed member. */
const SESSION_TIMEOUT_MS = 6_000;

const RUNNING = /checkpoint \d+ complete: \d+ table changes/;
const RESTORING = /restoring from (checkpoint|savepoint) \d+/;
const FINISHED = /finished: (\d+) table changes, (\d+) duplicates dropped, (\d+) restarts/;
const DROPPED = /(\d+) duplicates dropped/;

const say = (line: string) => console.log(`[chaos] ${line}`);
const brokers = testEndpoints().kafkaBrokers.split(',');
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

/** Per run (parallelism): its own topic and work folder, kept when the run failed. */
function runFolder(parallelism: number): { topic: string; workDir: string; checkpointDir: string; pass(): void } {
  const topic = uniqueName(`chaos-orders-p${parallelism}`);
  const workDir = mkdtempSync(join(tmpdir(), 'cdcflow-chaos-'));
  let passed = false;
  cleanups.push(async () => {
    if (passed) rmSync(workDir, { recursive: true, force: true });
    else say(`checkpoints and job state kept in ${workDir}`);
    const admin = new Kafka({ clientId: 'chaos-cleanup', brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });
  return { topic, workDir, checkpointDir: join(workDir, 'checkpoints'), pass: () => (passed = true) };
}

/** The workload as the topic holds it: per partition, the record at each offset. */
function workloadByPartition(): OracleRecord[][] {
  const partitions: OracleRecord[][] = [];
  for (const { seq, partition, id, event } of generateWorkload(WORKLOAD))
    (partitions[partition] ??= []).push({ seq, partition, id, event });
  return partitions;
}

/** Every way `state` differs from the projection of the records before `positions` (at most 20). */
function mismatchesAt(
  topic: string,
  state: LoadedUpsertState<OrderRow>,
  positions: ReadonlyMap<string, string>,
  partitions: readonly OracleRecord[][],
): { mismatches: string[]; keys: number; live: number } {
  const read = partitions.flatMap((records, p) => records.slice(0, Number(positions.get(`${topic}:${p}`) ?? 0)));
  const oracle = projectionOracle(read);
  const last = new Map<number, { position: ChangePosition; op: string }>();
  for (const { id, event } of read) {
    if (event === null) continue;
    const position = envelopePosition(event);
    const held = last.get(id);
    if (held === undefined || held.position < position) last.set(id, { position, op: event.op });
  }
  const mismatches: string[] = [];
  const miss = (text: string) => void (mismatches.length < 20 && mismatches.push(text));
  for (const [id, row] of oracle) {
    const entry = state.entries.get(id);
    if (entry === undefined) miss(`id ${id}: live in the oracle, no entry in the state`);
    else if (entry.row === null) miss(`id ${id}: live in the oracle, a tombstone (${entry.position}) in the state`);
    else if (!isDeepStrictEqual(entry.row, row))
      miss(`id ${id}: rows differ\n    state  ${JSON.stringify(entry.row)}\n    oracle ${JSON.stringify(row)}`);
  }
  for (const [key, entry] of state.entries) {
    const expected = last.get(key as number);
    if (expected === undefined) miss(`id ${String(key)}: in the state, not in what was read`);
    else if (entry.position !== expected.position)
      miss(`id ${String(key)}: state at ${entry.position}, its last event read is at ${expected.position}`);
    if (entry.row === null && expected !== undefined && expected.op !== 'd')
      miss(`id ${String(key)}: a tombstone in the state, but its last event is '${expected.op}'`);
    else if (entry.row !== null && !oracle.has(key as number))
      miss(`id ${String(key)}: live in the state, absent from the oracle`);
  }
  if (state.entries.size !== last.size && mismatches.length === 0)
    miss(`${state.entries.size} keys in the state, ${last.size} read`);
  return { mismatches, keys: last.size, live: oracle.size };
}

async function sigkillRun(parallelism: number, kills: number): Promise<void> {
  const { topic, workDir, checkpointDir, pass } = runFolder(parallelism);
  say(
    `parallelism ${parallelism}, seed ${SEED} (CDCFLOW_CHAOS_SEED), ${kills} kills, topic ${topic}, work dir ${workDir}`,
  );
  const env = {
    CDCFLOW_PARALLELISM: String(parallelism),
    KAFKA_BROKERS: brokers.join(','),
    CDCFLOW_TOPIC: topic,
    CDCFLOW_GROUP_ID: uniqueName('chaos-projection'),
    CDCFLOW_CHECKPOINT_DIR: checkpointDir,
    CDCFLOW_STATE_DIR: join(workDir, 'state'),
    CDCFLOW_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS),
    KAFKAJS_NO_PARTITIONER_WARNING: '1',
  };
  const echo = process.env['CDCFLOW_CHAOS_VERBOSE'] === '1' ? (line: string) => console.log(`  | ${line}`) : undefined;
  const job = {
    file: process.env['CDCFLOW_CHAOS_JOB'] ?? 'jobs/orders-projection.ts',
    env,
    ...(echo === undefined ? {} : { onLine: echo }),
  };
  const partitions = workloadByPartition();
  const load = () =>
    loadUpsertState<OrderRow>({ checkpointDir, jobName: 'orders-projection', operatorUid: 'orders-upsert' });

  // After each kill: the checkpoint the next start will restore must be exact for its offsets.
  const verified: number[] = [];
  const afterKill = async (kill: number): Promise<void> => {
    const state = await load();
    if (verified.at(-1) === state.checkpoint.id) return;
    const { mismatches, keys } = mismatchesAt(topic, state, state.sourcePositions, partitions);
    expect(
      mismatches,
      `after kill ${kill}, checkpoint ${state.checkpoint.id} ≠ oracle of what it read:\n${mismatches.join('\n')}`,
    ).toEqual([]);
    verified.push(state.checkpoint.id);
    echo?.(`checkpoint ${state.checkpoint.id} exact: ${keys} keys`);
  };

  // The workload goes out in slices, one as each start begins, so kills land while there is work.
  const feeder = new WorkloadFeeder(brokers, topic, WORKLOAD);
  await feeder.open();
  const slice = Math.ceil(((WORKLOAD.events ?? 0) * 1.1) / kills);
  const feeding: Promise<void>[] = [];
  const started = Date.now();
  const report = await killRepeatedly({
    job,
    kills,
    seed: SEED,
    running: RUNNING,
    restoring: RESTORING,
    beforeStart: () => void feeding.push(feeder.feed(slice)),
    afterKill,
    log: say,
  }).finally(() => Promise.allSettled(feeding));
  await Promise.all(feeding);
  await feeder.feedRest();
  await feeder.close();
  say(
    `${report.kills} kills (${report.killsDuringRestore} during restore) in ${((Date.now() - started) / 1000).toFixed(1)} s; ${verified.length} restored checkpoints exact; ${feeder.written} messages written`,
  );

  // Read to the end and finish: the bounded run takes a final savepoint and exits 0.
  const final = JobProcess.start({ ...job, env: { ...env, CDCFLOW_BOUNDED: '1' } });
  const exit = await final.waitForExit(180_000);
  expect(exit, `the final bounded run failed\n${final.tail()}`).toEqual({ code: 0, signal: null });
  const finished = (await final.waitFor(FINISHED, 1_000)).slice(1).map(Number);
  const restores = report.restores + (final.lines.some((l) => RESTORING.test(l)) ? 1 : 0);
  // What each process's upsert operator dropped (killed ones: as of their last checkpoint line).
  const dropped = [...report.processes, final].reduce(
    (sum, p) =>
      sum +
      Number(
        p.lines
          .map((l) => DROPPED.exec(l)?.[1])
          .filter(Boolean)
          .at(-1) ?? 0,
      ),
    0,
  );

  const state = await load();
  expect(state.checkpoint.kind).toBe('savepoint');
  expect(state.checkpoint.name).toMatch(/^final-\d+$/);
  // It has read every message of every partition...
  expect(Object.fromEntries(state.sourcePositions)).toEqual(
    Object.fromEntries(partitions.map((records, p) => [`${topic}:${p}`, String(records.length)])),
  );
  // ...and holds exactly the projection of all of them.
  const { mismatches, keys, live } = mismatchesAt(topic, state, state.sourcePositions, partitions);
  say(
    `compared ${keys} keys (${live} live rows, ${keys - live} tombstones) in savepoint ${state.checkpoint.name ?? ''}: ` +
      `${mismatches.length === 0 ? 'all equal' : 'MISMATCH'}; kills ${report.kills} (${report.killsDuringRestore} during restore), ` +
      `restarts from a checkpoint ${restores}, restored checkpoints verified exact ${verified.length}, in-process restarts ${finished[2] ?? '?'}, ` +
      `duplicates dropped ${dropped} (summed over processes; a replay after a kill counts again)`,
  );
  expect(mismatches, `final state ≠ projection oracle:\n${mismatches.join('\n')}`).toEqual([]);
  expect(state.entries.size).toBe(keys);
  expect(report.kills).toBe(kills);
  expect(restores).toBeGreaterThanOrEqual(kills);
  expect(verified.length).toBeGreaterThan(0);
  expect(dropped).toBeGreaterThan(0);
  pass();
}

describe('orders projection under SIGKILL', () => {
  it(`ends with exactly the projection oracle's table after ${KILLS} kills, every restored checkpoint exact`, () =>
    sigkillRun(1, KILLS));
  it(`does the same at parallelism 2 (worker threads, keyed exchange) after ${PARALLEL_KILLS} kills`, () =>
    sigkillRun(2, PARALLEL_KILLS));
});
