/**
 * Parallel execution end to end on bounded collections: the same job at parallelism 1 and 2
 * gives the same output (projection upsert; revenue windows keyed by status, which needs the
 * keyed exchange), and a checkpoint taken at parallelism 2 restores at 1 and at 3 to the same
 * golden table. Jobs run as child processes (test/support/parallel-job.ts) because the workers
 * of a parallel job run the job's own module.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../../scripts/workload/generator.ts';
import { projectionOracle, revenueWindowOracle } from '../../../scripts/workload/oracle.ts';
import {
  committedTable,
  RunFolders,
  runToEnd,
  startParallelJob,
  storedProjection,
  windowResults,
  type JobSpec,
} from '../../support/parallel-runs.ts';

const folders = new RunFolders();
afterAll(() => folders.cleanup());

const PROJECTION_WORKLOAD = { keys: 800, events: 6_000, seed: 11, duplicateFraction: 0.02 };
const REVENUE_WORKLOAD = { keys: 1500, events: 15_000, seed: 7 };

function liveRows(state: Awaited<ReturnType<typeof storedProjection>>): Map<unknown, unknown> {
  return new Map([...state.entries].filter(([, e]) => e.row !== null).map(([k, e]) => [k, e.row]));
}

describe('parallel execution (worker threads)', () => {
  it('projection: parallelism 2 commits the same table as parallelism 1, equal to the oracle', async () => {
    const spec: JobSpec = { job: 'projection', source: { kind: 'collection', workload: PROJECTION_WORKLOAD } };
    const oracle = projectionOracle(generateWorkload(PROJECTION_WORKLOAD));
    const one = folders.make();
    const two = folders.make();
    await runToEnd(spec, one, 1);
    const job = await runToEnd(spec, two, 2);
    expect(committedTable(two)).toEqual(committedTable(one));
    expect(committedTable(two)).toEqual(oracle);
    const stored = await storedProjection(two);
    expect(stored.checkpoint.kind).toBe('savepoint');
    expect(liveRows(stored)).toEqual(oracle);
    // Both subtasks committed part of the output: the work was really split.
    expect(job.lines.filter((l) => /checkpoint \d+ complete: [1-9]\d* changes/.test(l)).length).toBeGreaterThanOrEqual(
      2,
    );
  }, 180_000);

  it('revenue windows (keyed by status, through the exchange): parallelism 2 equals parallelism 1 and the oracle', async () => {
    const spec: JobSpec = { job: 'revenue', source: { kind: 'collection', workload: REVENUE_WORKLOAD } };
    // The collection is one split read in generation order: the oracle's watermark is that split's.
    const oracle = revenueWindowOracle(
      [...generateWorkload(REVENUE_WORKLOAD)].map((r) => ({ ...r, partition: 0 })),
      { partitions: 1 },
    );
    const results = [];
    for (const parallelism of [1, 2]) {
      const dirs = folders.make();
      await runToEnd(spec, dirs, parallelism);
      results.push(windowResults(dirs));
    }
    for (const result of results) {
      expect(result.windows).toEqual(oracle.windows);
      expect(result.late).toEqual(oracle.late.map((l) => l.lsn).sort((a, b) => a - b));
    }
    expect(oracle.late.length).toBeGreaterThan(50);
  }, 240_000);

  it('a failing subtask restarts the whole attempt from the latest checkpoint (global failover), output exact', async () => {
    const first = folders.make();
    const marker = `${first.root}/failed-once`;
    const spec: JobSpec = {
      job: 'projection',
      source: { kind: 'collection', workload: PROJECTION_WORKLOAD },
      throttleMs: 20,
      intervalMs: 200,
      failOnceMarker: marker,
    };
    const job = await runToEnd(spec, first, 2, 180_000);
    expect(job.lines.some((l) => /subtask 1 failed: injected sink failure/.test(l) && /restart 1\/3/.test(l))).toBe(
      true,
    );
    const oracle = projectionOracle(generateWorkload(PROJECTION_WORKLOAD));
    expect(committedTable(first)).toEqual(oracle);
    expect(liveRows(await storedProjection(first))).toEqual(oracle);
  }, 180_000);

  it('a checkpoint taken at parallelism 2 restores at 1 and at 3 to the same golden table', async () => {
    const spec: JobSpec = {
      job: 'projection',
      source: { kind: 'collection', workload: PROJECTION_WORKLOAD },
      throttleMs: 40,
      intervalMs: 200,
    };
    const oracle = projectionOracle(generateWorkload(PROJECTION_WORKLOAD));
    const first = folders.make();
    const job = startParallelJob(spec, first, 2);
    // Kill mid-run: after a few checkpoints, long before the throttled collection is read.
    await job.waitFor(/checkpoint [3-9] complete/, 90_000);
    await job.kill();
    const killedAt = await storedProjection(first);
    expect(killedAt.checkpoint.kind).toBe('checkpoint');
    expect(Number(killedAt.sourcePositions.get('0'))).toBeLessThan(PROJECTION_WORKLOAD.events);

    for (const parallelism of [1, 3]) {
      const dirs = folders.copyCheckpoints(first);
      const restored = await runToEnd({ ...spec, throttleMs: 0 }, dirs, parallelism);
      expect(restored.lines.some((l) => /restoring from checkpoint \d+/.test(l))).toBe(true);
      const stored = await storedProjection(dirs);
      expect(stored.checkpoint.kind).toBe('savepoint');
      expect(liveRows(stored), `restored at parallelism ${parallelism}`).toEqual(oracle);
    }
  }, 240_000);
});
