/**
 * A graceful stop of a parallel job (SIGTERM to the process, `env.stop()` inside it) commits what
 * the last completed checkpoint's transactions hold: the committed output equals the table in the
 * final checkpoint. Before, `stop()` at parallelism > 1 left them prepared, and SIGTERM killed the
 * process outright.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  committedTable,
  RunFolders,
  startParallelJob,
  storedProjection,
  type JobSpec,
} from '../../support/parallel-runs.ts';

const folders = new RunFolders();
afterAll(() => folders.cleanup());

describe('graceful stop at parallelism 2', () => {
  it('SIGTERM: exit 0, and the committed output is exactly the final checkpoint', async () => {
    const spec: JobSpec = {
      job: 'projection',
      source: { kind: 'collection', workload: { keys: 1_000, events: 40_000, seed: 5 } },
      throttleMs: 25,
    };
    const dirs = folders.make();
    const job = startParallelJob(spec, dirs, 2, { CDCFLOW_LOG_FORMAT: 'json' });
    await job.waitFor(/checkpoint \d+ complete: [1-9]\d* changes/, 60_000);
    process.kill(job.pid, 'SIGTERM');
    const exit = await job.waitForExit(30_000);
    expect(exit, job.tail(30)).toEqual({ code: 0, signal: null });
    expect(
      job.lines.some((l) => /job stopped at checkpoint \d+/.test(l)),
      job.tail(30),
    ).toBe(true);
    const stored = await storedProjection(dirs);
    const live = new Map([...stored.entries].filter(([, e]) => e.row !== null).map(([k, e]) => [k, e.row]));
    expect(live.size).toBeGreaterThan(0);
    // Every change the final checkpoint covers is committed, nothing beyond it.
    expect(committedTable(dirs)).toEqual(live);
  }, 90_000);
});
