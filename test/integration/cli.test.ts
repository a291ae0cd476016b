/**
 * The `cdcflow` CLI end to end on the real stack: `run` jobs/orders-to-postgres.ts (Debezium
 * orders from Kafka → upsert → two-phase Postgres), `list`, `info`, `savepoint`, `stop
 * --savepoint`, a command on the stopped job, `checkpoints list|inspect` offline, `run
 * --from-savepoint`, `rescale 2`, `cancel`, and a last bounded run that resolves what the cancel
 * left prepared. The workload is written in slices between the steps; the table must end equal
 * to the projection oracle, with no prepared transaction left.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { projectionOracle } from '../../scripts/workload/oracle.ts';
import type { WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { JobProcess } from '../support/job-process.ts';
import { dropOrdersTable, readOrdersTable, tableDifferences } from '../support/orders-check.ts';
import { WorkloadFeeder } from '../support/workload-feeder.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const WORKLOAD: WorkloadOptions = { keys: 400, events: 6_000, duplicateFraction: 0.02, seed: 20_261_204 };
const COMMITTED = /checkpoint \d+ committed: \d+ rows/;
const verbose = process.env['CDCFLOW_TEST_VERBOSE'] === '1';

const { databaseUrl, kafkaBrokers } = testEndpoints();
const job = uniqueName('cli-orders');
const topic = uniqueName('cli-orders-topic');
const table = uniqueName('cli_orders').replace(/-/g, '_');
const workDir = mkdtempSync(join(tmpdir(), 'cdcflow-cli-'));
const root = join(workDir, 'checkpoints');
const env = {
  DATABASE_URL: databaseUrl,
  KAFKA_BROKERS: kafkaBrokers,
  CDCFLOW_CHECKPOINT_DIR: root,
  KAFKAJS_NO_PARTITIONER_WARNING: '1',
};
const jobFlags = [
  '--name',
  job,
  '--set',
  `topic=${topic}`,
  '--set',
  `table=${table}`,
  '--set',
  'sessionTimeoutMs=6000',
  '--set',
  `state.dir=${join(workDir, 'state')}`,
];
const foreground: JobProcess[] = [];
let passed = false;

/** A long-running `cdcflow run|rescale`, its output kept like a job's. */
function start(args: readonly string[]): JobProcess {
  const process = JobProcess.start({
    file: 'runtime/cli/cdcflow.mjs',
    args,
    env,
    ...(verbose ? { onLine: (l: string) => console.log(`  | ${l}`) } : {}),
  });
  foreground.push(process);
  return process;
}

/** A short `cdcflow` command; resolves with its exit code and output (a failing command does not throw). */
async function cdcflow(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['runtime/cli/cdcflow.mjs', ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function json<T>(...args: string[]): Promise<T> {
  const result = await cdcflow(...args, '--json');
  if (result.code !== 0) throw new Error(`cdcflow ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

afterAll(async () => {
  for (const p of foreground) if (p.running) process.kill(p.pid, 'SIGTERM'); // forwarded to the job
  await Promise.all(foreground.map((p) => p.exited));
  if (passed) {
    const admin = new Kafka({
      clientId: 'cli-cleanup',
      brokers: kafkaBrokers.split(','),
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
    await dropOrdersTable(databaseUrl, table, job);
    rmSync(workDir, { recursive: true, force: true });
  } else console.log(`cli test: topic ${topic}, table ${table} and ${workDir} kept`);
});

describe('cdcflow CLI', () => {
  it('runs, savepoints, stops, resumes, rescales and cancels a job; the table ends equal to the oracle', async () => {
    const feeder = new WorkloadFeeder(kafkaBrokers.split(','), topic, WORKLOAD);
    await feeder.open();
    await feeder.feed(1_500);

    const first = start(['run', 'jobs/orders-to-postgres.ts', ...jobFlags]);
    await first.waitFor(COMMITTED, 60_000);
    const listed = await json<{ jobs: { job: string; state: string; parallelism: number }[] }>('list');
    expect(listed.jobs).toEqual([expect.objectContaining({ job, state: 'running', parallelism: 1 })]);
    const info = await json<{ plan: { operators: { uid: string; kind: string }[] } }>('info', job);
    expect(info.plan.operators.map((o) => o.uid).slice(0, 2)).toEqual(['orders-source', 'orders-upsert']);
    expect(info.plan.operators.map((o) => o.kind)).toEqual(['source', 'operator', 'sink']);

    const savepoint = await json<{ location: string }>('savepoint', job, '--name', 'before-upgrade');
    expect(savepoint.location).toBe(join(root, job, 'savepoints', 'before-upgrade'));
    await feeder.feed(1_500);
    const stop = await json<{ state: string; savepointPath: string }>('stop', job, '--savepoint');
    expect(stop.state).toBe('stopped');
    expect((await first.waitForExit(30_000)).code).toBe(0);

    const offline = await cdcflow('info', job);
    expect(offline.code).toBe(3);
    expect(offline.stderr).toContain(`job '${job}' is not running`);
    const catalog = await json<{ savepoints: { name: string }[] }>('checkpoints', 'list', job);
    expect(catalog.savepoints.map((s) => s.name)).toContain('before-upgrade');
    const inspected = await json<{ kind: string; operators: { uid: string }[] }>(
      'checkpoints',
      'inspect',
      job,
      stop.savepointPath,
    );
    expect(inspected.kind).toBe('savepoint');
    expect(inspected.operators.map((o) => o.uid)).toContain('orders-source');

    await feeder.feed(1_500);
    const resumed = start(['run', 'jobs/orders-to-postgres.ts', ...jobFlags, '--from-savepoint', stop.savepointPath]);
    await resumed.waitFor(/restoring from savepoint/, 60_000);
    await resumed.waitFor(COMMITTED, 60_000);

    const rescaled = start(['rescale', job, '2']);
    await rescaled.waitFor(/rescaling .* from parallelism 1 to 2/, 60_000);
    await rescaled.waitFor(/restoring from savepoint/, 60_000);
    expect((await resumed.waitForExit(30_000)).code).toBe(0);
    // The sink prints nothing for a checkpoint without rows: give the rescaled job some.
    await feeder.feedRest();
    await feeder.close();
    await rescaled.waitFor(COMMITTED, 60_000);
    expect((await json<{ parallelism: number }>('info', job)).parallelism).toBe(2);

    const oracle = projectionOracle(generateWorkload(WORKLOAD));
    for (let deadline = Date.now() + 60_000; ;) {
      const { rows } = await readOrdersTable(databaseUrl, table, job);
      const d = tableDifferences(rows, oracle);
      if (d.lost.length + d.extra.length + d.stale.length === 0 && rows.size === oracle.size) break;
      if (Date.now() > deadline)
        throw new Error(
          `table never matched the oracle: lost ${d.lost.length}, extra ${d.extra.length}, stale ${d.stale.length}`,
        );
      await new Promise((r) => setTimeout(r, 500));
    }
    const cancelled = await cdcflow('cancel', job);
    expect(cancelled.stdout).toContain(`cancelled ${job}`);
    await rescaled.waitForExit(30_000);

    // A cancel may leave the transactions of a checkpoint in flight prepared; the next start resolves them.
    const last = start(['run', 'jobs/orders-to-postgres.ts', ...jobFlags, '--set', 'bounded=true']);
    expect((await last.waitForExit(90_000)).code).toBe(0);
    const { rows, prepared } = await readOrdersTable(databaseUrl, table, job);
    const { lost, extra, stale } = tableDifferences(rows, oracle);
    expect({ lost, extra, stale: stale.slice(0, 10), prepared }).toEqual({
      lost: [],
      extra: [],
      stale: [],
      prepared: [],
    });
    expect(rows.size).toBe(oracle.size);
    passed = true;
  });
});
