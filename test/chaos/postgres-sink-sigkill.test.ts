/**
 * Exactly-once into Postgres under SIGKILL. jobs/orders-to-postgres.ts (Debezium orders → keyBy
 * id → upsert → two-phase Postgres sink, 1 s checkpoints) runs in a child process and is
 * SIGKILLed again and again while the workload is still being written: half of the kills at
 * random moments, half 0–150 ms after the sink printed `prepared`: between PREPARE TRANSACTION and
 * COMMIT PREPARED, before or after the checkpoint became durable. Each restart restores the latest
 * checkpoint, commits the prepared transactions it recorded and rolls back the others. A last
 * bounded run reads to the end; then the table must equal the projection oracle: no row lost, none
 * extra or stale, and no prepared transaction left behind. The kill loop is test/support/sink-chaos.ts.
 *
 * CDCFLOW_CHAOS_KILLS (default 10) and CDCFLOW_CHAOS_SEED replay a run; CDCFLOW_CHAOS_VERBOSE=1
 * echoes the job's output.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { projectionOracle } from '../../scripts/workload/oracle.ts';
import type { WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { dropOrdersTable, readOrdersTable, tableDifferences } from '../support/orders-check.ts';
import { ChaosWorkspace, chaosSettings, countLines, runSinkChaos } from '../support/sink-chaos.ts';

const settings = chaosSettings();
const KILLS = settings.kills;
const WORKLOAD: WorkloadOptions = { keys: 5_000, events: 60_000, duplicateFraction: 0.02, seed: 20_251_124 };

const COMMITTED = /checkpoint \d+ committed: \d+ rows/;
const PREPARED = /checkpoint \d+ prepared: \d+ rows/;
const RESTORE_COMMITTED = /restore: committed /;
const RESTORE_FOUND = /restore: found already committed /;
const ROLLED_BACK = /restore: rolled back (\d+) prepared/;

const { databaseUrl } = testEndpoints();
const ws = new ChaosWorkspace('postgres-sink');
const say = ws.say;
const table = uniqueName('chaos_orders').replace(/-/g, '_');
const jobName = ws.jobName;
let passed = false;

afterAll(async () => {
  if (!passed) say(`table ${table} kept`);
  await ws.cleanup(passed);
  if (!passed) return;
  await dropOrdersTable(databaseUrl, table, jobName);
});

describe('orders → Postgres (two-phase) under SIGKILL', () => {
  it(`ends with exactly the projection oracle's rows after ${KILLS} kills`, async () => {
    say(
      `seed ${settings.seed} (CDCFLOW_CHAOS_SEED), ${KILLS} kills (CDCFLOW_CHAOS_KILLS), topic ${ws.topic}, table ${table}, work dir ${ws.workDir}`,
    );
    const run = await runSinkChaos(ws, {
      file: 'jobs/orders-to-postgres.ts',
      env: { DATABASE_URL: databaseUrl, CDCFLOW_PG_TABLE: table },
      workload: WORKLOAD,
      settings,
      prepared: PREPARED,
      running: COMMITTED,
    });
    const restoreCommits = countLines(run.lines, RESTORE_COMMITTED);
    const restoreFound = countLines(run.lines, RESTORE_FOUND);
    const rolledBack = countLines(run.lines, ROLLED_BACK);

    const oracle = projectionOracle(generateWorkload(WORKLOAD));
    const { rows, prepared } = await readOrdersTable(databaseUrl, table, jobName);
    const { lost, extra, stale } = tableDifferences(rows, oracle);
    say(
      `${KILLS} kills (${run.killsDuringRestore} during restore) in ${run.seconds.toFixed(1)} s, ${run.written} messages; ` +
        `${run.killedPrepared} processes died with a prepared transaction as their last word; on restore: ${restoreCommits} recorded transactions committed, ` +
        `${restoreFound} found already committed, ${rolledBack} unrecorded ones rolled back`,
    );
    say(
      `table ${rows.size} rows, oracle ${oracle.size}: lost ${lost.length}, extra (duplicated or resurrected) ${extra.length}, stale ${stale.length}; prepared left ${prepared.length}`,
    );
    expect(lost.slice(0, 20), `lost ids (of ${lost.length})`).toEqual([]);
    expect(extra.slice(0, 20), `extra ids (of ${extra.length})`).toEqual([]);
    expect(stale.slice(0, 20), `stale rows (of ${stale.length})`).toEqual([]);
    expect(prepared).toEqual([]);
    expect(rows.size).toBe(oracle.size);
    expect(restoreCommits + restoreFound + rolledBack).toBeGreaterThan(0);
    passed = true;
  });
});
