/**
 * SIGTERM (what systemd and Kubernetes send) during load of a real job process: the Postgres
 * two-phase projection (jobs/orders-to-postgres.ts) stops with a final checkpoint. Before the
 * lifecycle handling the process died within 0.3 s with no log, leaving prepared transactions
 * holding row locks. Now: exit 0, no prepared transaction of the job left, the final checkpoint's
 * transaction committed (the rows of that checkpoint visible), and a bounded restart from it ends
 * equal to the projection oracle.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { projectionOracle } from '../../scripts/workload/oracle.ts';
import type { WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { JobProcess } from '../support/job-process.ts';
import { dropOrdersTable, readOrdersTable, tableDifferences } from '../support/orders-check.ts';
import { ChaosWorkspace } from '../support/sink-chaos.ts';
import { WorkloadFeeder } from '../support/workload-feeder.ts';

const WORKLOAD: WorkloadOptions = { keys: 2_000, events: 20_000, duplicateFraction: 0.02, seed: 20_261_204 };
const { databaseUrl } = testEndpoints();
const ws = new ChaosWorkspace('graceful-stop');
const table = uniqueName('stop_orders').replace(/-/g, '_');
let passed = false;

afterAll(async () => {
  await ws.cleanup(passed);
  if (passed) await dropOrdersTable(databaseUrl, table, ws.jobName);
});

describe('SIGTERM during load of a Postgres two-phase job', () => {
  it('stops with a final checkpoint: exit 0, nothing left prepared, its rows committed, the rest on restart', async () => {
    const env = ws.jobEnv({ DATABASE_URL: databaseUrl, CDCFLOW_PG_TABLE: table, CDCFLOW_LOG_FORMAT: 'json' });
    const feeder = new WorkloadFeeder(ws.brokers, ws.topic, WORKLOAD);
    await feeder.open();
    const feeding = feeder.feedSteadily(12_000, 3_000);
    const job = JobProcess.start({ file: 'jobs/orders-to-postgres.ts', env });
    await job.waitFor(/checkpoint \d+ committed: [1-9]\d* rows/, 60_000);
    const sentAt = Date.now();
    process.kill(job.pid, 'SIGTERM');
    const exit = await job.waitForExit(45_000);
    const stopMs = Date.now() - sentAt;
    feeder.hurry();
    await feeding;

    expect(exit, job.tail(30)).toEqual({ code: 0, signal: null });
    const stopped = job.lines.map((l) => /job stopped at checkpoint (\d+)/.exec(l)).find((m) => m !== null);
    expect(stopped, job.tail(30)).toBeDefined();
    const finalId = Number((stopped as RegExpExecArray)[1]);
    // The final checkpoint's transaction (if it wrote anything) committed before the exit.
    const prepared = job.lines.filter((l) => new RegExp(`checkpoint ${finalId} prepared`).test(l)).length;
    const committed = job.lines.filter((l) => new RegExp(`checkpoint ${finalId} committed`).test(l)).length;
    expect(committed).toBe(prepared);
    expect(job.lines.some((l) => /SIGTERM received: stopping with a final checkpoint/.test(l))).toBe(true);
    const afterStop = await readOrdersTable(databaseUrl, table, ws.jobName);
    expect(afterStop.prepared).toEqual([]);
    expect(afterStop.rows.size).toBeGreaterThan(0);
    console.log(
      `[graceful-stop] SIGTERM → exit 0 in ${stopMs} ms at checkpoint ${finalId}; ${afterStop.rows.size} rows visible`,
    );

    // The rest of the workload, then a bounded run from the final checkpoint: equal to the oracle.
    await feeder.feedRest();
    await feeder.close();
    const rest = JobProcess.start({ file: 'jobs/orders-to-postgres.ts', env: { ...env, CDCFLOW_BOUNDED: '1' } });
    const restExit = await rest.waitForExit(120_000);
    expect(restExit, rest.tail(30)).toEqual({ code: 0, signal: null });
    expect(rest.lines.some((l) => new RegExp(`restoring from checkpoint ${finalId}`).test(l))).toBe(true);
    const end = await readOrdersTable(databaseUrl, table, ws.jobName);
    const { lost, extra, stale } = tableDifferences(end.rows, projectionOracle(generateWorkload(WORKLOAD)));
    expect({ lost: lost.length, extra: extra.length, stale: stale.length, prepared: end.prepared }).toEqual({
      lost: 0,
      extra: 0,
      stale: 0,
      prepared: [],
    });
    passed = true;
  }, 240_000);
});
