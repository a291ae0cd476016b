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
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { projectionOracle } from '../../scripts/workload/oracle.ts';
import type { WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { s3ConnectionFromEnv } from '../../checkpoints/s3-location.ts';
import { S3ObjectStore } from '../../checkpoints/s3-object-store.ts';
import { testEndpoints } from '../support/endpoints.ts';
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
  onS3 && s3Endpoint !== undefined
    ? { CDCFLOW_CHECKPOINT_DIR: `s3://${s3Bucket}/${ws.jobName}`, CDCFLOW_S3_ENDPOINT: s3Endpoint }
    : {};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const CLAIMED = /partition (\S+): claimed epoch (\d+)/;

afterAll(async () => {
  // Whatever the outcome: a prepared transaction left behind blocks every later replication slot.
  const left = await rollbackPreparedOf(databaseUrl, `${ws.jobName}.`);
  if (left.length > 0) say(`rolled back ${left.length} prepared transaction(s) left by the processes`);
  await ws.cleanup(passed);
  if (onS3 && passed) {
    const store = new S3ObjectStore(s3Bucket, { ...s3ConnectionFromEnv(), endpoint: s3Endpoint as string });
    await store.delete(await store.list(`${ws.jobName}/`)).catch(() => undefined);
    await store.destroy();
  }
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
      ...s3Env,
    }),
    onLine: (line) => verbose && console.log(`[${name}] ${line}`),
  });
}

/** Waits until some process in `among` prints a claim of `partition` after line counts `from`. */
async function claimedElsewhere(
  among: readonly JobProcess[],
  partitions: readonly string[],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const marks = among.map((p) => p.lines.length);
  while (Date.now() < deadline) {
    const seen = new Set(among.flatMap((p, i) => p.lines.slice(marks[i]).flatMap((l) => CLAIMED.exec(l)?.[1] ?? [])));
    if (partitions.every((p) => seen.has(p))) return;
    await sleep(200);
  }
  throw new Error(`partitions ${partitions.join(', ')} were not claimed by another process within ${timeoutMs} ms`);
}

/** The partitions a process currently runs, from its own lines. */
function ownedBy(p: JobProcess): string[] {
  const owned = new Set<string>();
  for (const line of p.lines) {
    const claim = CLAIMED.exec(line);
    if (claim !== null) owned.add(claim[1] as string);
    const gone = /partition (\S+): (task stopped|task finished|fenced)/.exec(line);
    if (gone !== null) owned.delete(gone[1] as string);
  }
  return [...owned];
}

interface FenceRow {
  seq: string;
  instance: string;
  kind: 'claim' | 'commit';
  epoch: string;
  owner: string;
}

async function readFenceLog(): Promise<FenceRow[]> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    return (
      await db.query<FenceRow>(
        'SELECT seq, instance, kind, epoch, owner FROM cdcflow_sink_fence_log WHERE left(instance, length($1)) = $1 ORDER BY seq',
        [`${ws.jobName}.`],
      )
    ).rows;
  } finally {
    await db.end();
  }
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
      const log = await readFenceLog();
      const current = new Map<string, { epoch: string; owner: string }>();
      const violations: string[] = [];
      let commits = 0;
      for (const row of log) {
        if (row.kind === 'claim') {
          const before = current.get(row.instance);
          if (before !== undefined && Number(before.epoch) > Number(row.epoch))
            violations.push(`claim ${row.seq} of ${row.instance} went back from epoch ${before.epoch} to ${row.epoch}`);
          current.set(row.instance, { epoch: row.epoch, owner: row.owner });
          continue;
        }
        commits += 1;
        const owner = current.get(row.instance);
        if (owner?.epoch !== row.epoch || owner.owner !== row.owner)
          violations.push(
            `commit ${row.seq} of ${row.instance} by ${row.owner} epoch ${row.epoch} while ${owner?.owner} held epoch ${owner?.epoch}`,
          );
      }
      say(`fence log: ${log.length - commits} claims, ${commits} commits, ${violations.length} violations`);
      expect(violations).toEqual([]);
      expect(new Set(log.filter((r) => r.kind === 'claim').map((r) => r.owner)).size).toBeGreaterThanOrEqual(4);
      const sleeperAfter = sleeper.lines.slice(sleeperMark).join('\n');
      expect(sleeperAfter, 'the resumed process dropped what it lost').toMatch(/revoked|fenced/);
      passed = true;
    } finally {
      for (const p of all) await p.kill().catch(() => undefined);
      await feeder.close();
    }
  }, 150_000);
});
