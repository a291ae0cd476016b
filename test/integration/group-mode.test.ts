/**
 * Group mode end to end (docs/group-mode.md): jobs/orders-projection-group.ts in 3 child processes
 * sharing a 4-partition topic through one consumer group, checkpoints in one shared temp dir, the
 * two-phase Postgres sink. Mid-run a 4th process joins, one process is SIGKILLed, another is
 * SIGSTOPped past its session timeout (6 s) until its partitions run elsewhere, then resumed.
 * The table must end exactly equal to the projection oracle, no prepared transaction left, and
 * the fence log must show that every commit carried the epoch of the latest claim of its
 * partition at that moment (no process committed for a partition it did not own), the resumed
 * process having noticed and dropped what it lost.
 *
 * `group-mode-s3.test.ts` (in `npm test`; CDCFLOW_GROUP_MODE_S3=1) runs the same with the checkpoint root,
 * claims included, in the stack's conditional-write S3 store (CDCFLOW_S3_CONDITIONAL_ENDPOINT,
 * S3Proxy 4.1.0 on 19100): claims by If-None-Match (runtime/group/s3-claim-store.ts), each new
 * owner restoring the previous epoch's checkpoint from the bucket.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { projectionOracle } from '../../scripts/workload/oracle.ts';
import type { WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { testEndpoints } from '../support/endpoints.ts';
import {
  CLAIMED,
  auditFenceLog,
  claimedElsewhere,
  deleteS3CheckpointRoot,
  ownedBy,
  readFenceLog,
  s3CheckpointEnv,
} from '../support/group-processes.ts';
import { JobProcess } from '../support/job-process.ts';
import { dropOrdersTable, readOrdersTable, rollbackPreparedOf, tableDifferences } from '../support/orders-check.ts';
import { ChaosWorkspace } from '../support/sink-chaos.ts';
import { WorkloadFeeder } from '../support/workload-feeder.ts';

const WORKLOAD: WorkloadOptions = {
  keys: 400,
  events: 8_000,
  partitions: 4,
  duplicateFraction: 0.02,
  seed: 20_261_204,
};
const SESSION_MS = 6_000;
const { databaseUrl } = testEndpoints();
const ws = new ChaosWorkspace('group-mode');
const say = ws.say;
const table = ws.jobName.replace(/-/g, '_');
const verbose = process.env['CDCFLOW_CHAOS_VERBOSE'] === '1';
let passed = false;

const s3Endpoint = process.env['CDCFLOW_S3_CONDITIONAL_ENDPOINT'];
const onS3 = process.env['CDCFLOW_GROUP_MODE_S3'] === '1';
if (onS3 && s3Endpoint === undefined)
  throw new Error(
    'CDCFLOW_GROUP_MODE_S3=1 needs CDCFLOW_S3_CONDITIONAL_ENDPOINT (npm run stack -- up s3proxy-conditional)',
  );
const s3Bucket = process.env['CDCFLOW_S3_BUCKET'] ?? 'cdcflow';
const s3Env: Record<string, string> =
  onS3 && s3Endpoint !== undefined ? s3CheckpointEnv(s3Endpoint, s3Bucket, ws.jobName) : {};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterAll(async () => {
  // Whatever the outcome: a prepared transaction left behind blocks every later replication slot.
  const left = await rollbackPreparedOf(databaseUrl, `${ws.jobName}.`);
  if (left.length > 0) say(`rolled back ${left.length} prepared transaction(s) left by the processes`);
  await ws.cleanup(passed);
  if (onS3 && passed) await deleteS3CheckpointRoot(s3Endpoint as string, s3Bucket, ws.jobName);
  if (!passed) return say(`table ${table} kept`);
  await dropOrdersTable(databaseUrl, table, ws.jobName);
});

function start(name: string): JobProcess {
  return JobProcess.start({
    file: 'jobs/orders-projection-group.ts',
    env: ws.jobEnv({
      DATABASE_URL: databaseUrl,
      CDCFLOW_PG_TABLE: table,
      CDCFLOW_SESSION_TIMEOUT_MS: String(SESSION_MS),
      CDCFLOW_CHECKPOINT_INTERVAL_MS: '500',
      // Superseded epochs deleted while the processes fail over: restores must not need them.
      CDCFLOW_EPOCH_GC_MS: '1000',
      CDCFLOW_EPOCH_GC_GRACE_MS: '2000',
      ...s3Env,
    }),
    onLine: (line) => verbose && console.log(`[${name}] ${line}`),
  });
}

async function tableMatches(oracleSize: number): Promise<boolean> {
  const { rows } = await readOrdersTable(databaseUrl, table, ws.jobName);
  return rows.size === oracleSize;
}

describe(`group mode: 3 → 4 processes, SIGKILL, SIGSTOP past the session timeout${onS3 ? ', checkpoints and claims in S3' : ''}`, () => {
  it('ends exactly equal to the oracle and no process commits for a partition it lost', async () => {
    const oracle = projectionOracle(generateWorkload(WORKLOAD));
    const feeder = new WorkloadFeeder(ws.brokers, ws.topic, WORKLOAD);
    await feeder.open();
    const all: JobProcess[] = [];
    try {
      void feeder.feedSteadily(6_000, 120);
      const [a, b, c] = ['A', 'B', 'C'].map(start) as [JobProcess, JobProcess, JobProcess];
      all.push(a, b, c);
      for (const p of [a, b, c]) await p.waitFor(CLAIMED, 60_000);
      await sleep(3_000);
      say(`3 processes committing: ${[a, b, c].map((p) => `${p.pid} owns ${ownedBy(p).join(',')}`).join('; ')}`);

      const d = start('D');
      all.push(d);
      await d.waitFor(CLAIMED, 40_000);
      await sleep(3_000);
      say(`4th process ${d.pid} owns ${ownedBy(d).join(',')}`);

      const victim = [a, b, c, d].find((p) => ownedBy(p).length > 0) as JobProcess;
      const lost = ownedBy(victim);
      await victim.kill();
      say(`SIGKILLed ${victim.pid} (owned ${lost.join(',')})`);
      const alive = [a, b, c, d].filter((p) => p !== victim);
      await claimedElsewhere(alive, lost, 30_000);

      const sleeper = alive.find((p) => ownedBy(p).length > 0) as JobProcess;
      const paused = ownedBy(sleeper);
      const sleeperMark = sleeper.lines.length;
      process.kill(sleeper.pid, 'SIGSTOP');
      say(`SIGSTOPped ${sleeper.pid} (owned ${paused.join(',')})`);
      try {
        await claimedElsewhere(
          alive.filter((p) => p !== sleeper),
          paused,
          30_000,
        );
        await sleep(2_000); // the new owners commit meanwhile
      } finally {
        process.kill(sleeper.pid, 'SIGCONT');
      }
      say(`SIGCONTed ${sleeper.pid}; its partitions were claimed elsewhere`);
      await sleeper.waitFor(/assignment: /, 30_000, sleeperMark);

      feeder.hurry();
      await feeder.feedRest();
      const deadline = Date.now() + 40_000;
      while (!(await tableMatches(oracle.size)) && Date.now() < deadline) await sleep(500);
      await sleep(1_500); // the last open checkpoint commits
      for (const p of alive) process.kill(p.pid, 'SIGTERM');
      for (const p of alive) await p.waitForExit(30_000);

      const { rows, prepared } = await readOrdersTable(databaseUrl, table, ws.jobName);
      const diff = tableDifferences(rows, oracle);
      say(
        `table ${rows.size} rows, oracle ${oracle.size}: lost ${diff.lost.length}, extra ${diff.extra.length}, stale ${diff.stale.length}; prepared left ${prepared.length}`,
      );
      expect(diff.lost.slice(0, 20)).toEqual([]);
      expect(diff.extra.slice(0, 20)).toEqual([]);
      expect(diff.stale.slice(0, 20)).toEqual([]);
      expect(prepared).toEqual([]);

      // Every commit carries the epoch of the latest claim of its instance, in lock order.
      const audit = auditFenceLog(await readFenceLog(databaseUrl, `${ws.jobName}.`));
      say(`fence log: ${audit.claims} claims, ${audit.commits} commits, ${audit.violations.length} violations`);
      expect(audit.violations).toEqual([]);
      expect(audit.owners).toBeGreaterThanOrEqual(4);
      const collected = all.flatMap((p) => p.lines.filter((l) => /deleted superseded epochs/.test(l)));
      say(`superseded epochs deleted: ${collected.length} times`);
      expect(collected.length, 'superseded epochs were garbage collected during the run').toBeGreaterThan(0);
      const sleeperAfter = sleeper.lines.slice(sleeperMark).join('\n');
      expect(sleeperAfter, 'the resumed process dropped what it lost').toMatch(/revoked|fenced/);
      passed = true;
    } finally {
      for (const p of all) await p.kill().catch(() => undefined);
      await feeder.close();
    }
  }, 150_000);
});
