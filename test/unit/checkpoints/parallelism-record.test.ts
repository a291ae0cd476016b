import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  PARALLELISM_FILE,
  highestParallelism,
  recordParallelism,
  retiredSubtasks,
} from '../../../checkpoints/index.ts';
import type { Operator, OperatorContext } from '../../../operators/operator.ts';
import { StreamEnvironment, fromCollection } from '../../../runtime/index.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cdcflow-parallelism-'));
  dirs.push(dir);
  return dir;
}

describe('parallelism record', () => {
  it('keeps the highest parallelism ever recorded, creating the job folder', async () => {
    const root = join(tempDir(), 'chk', 'job');
    expect(await highestParallelism(root)).toBe(1);
    expect(await recordParallelism(root, 3)).toBe(3);
    expect(await recordParallelism(root, 2)).toBe(3);
    expect(await recordParallelism(root, 1)).toBe(3);
    expect(JSON.parse(readFileSync(join(root, PARALLELISM_FILE), 'utf8'))).toEqual({ highestParallelism: 3 });
    expect(await recordParallelism(root, 4)).toBe(4);
  });

  it('reads an unreadable record as 1', async () => {
    const root = tempDir();
    writeFileSync(join(root, PARALLELISM_FILE), '{not json');
    expect(await highestParallelism(root)).toBe(1);
  });

  it('gives each subtask of the narrower run the retired indices j % N == i', () => {
    expect(retiredSubtasks(0, 1, 3)).toEqual([1, 2]);
    expect(retiredSubtasks(0, 2, 5)).toEqual([2, 4]);
    expect(retiredSubtasks(1, 2, 5)).toEqual([3]);
    expect(retiredSubtasks(0, 3, 3)).toEqual([]);
    expect(retiredSubtasks(0, 3, 2)).toEqual([]);
  });

  it('hands a job at parallelism 1 the subtasks of an earlier run at 3 before its operators open', async () => {
    const dir = tempDir();
    const env = StreamEnvironment.create({
      jobName: 'retired',
      checkpoints: { dir: join(dir, 'chk'), intervalMs: 50 },
      state: { backend: 'memory' },
      log: () => undefined,
    });
    await recordParallelism(join(dir, 'chk', 'retired'), 3); // what a run at parallelism 3 wrote at its start
    const seen: (readonly number[] | undefined)[] = [];
    const operator: Operator<number, never> = {
      open: (context: OperatorContext) => void seen.push(context.retiredSubtasks),
      processBatch: () => undefined,
    };
    env.fromSource(fromCollection([1, 2, 3])).sinkTo({ name: 'probe', createOperator: () => operator });
    await env.execute();
    expect(seen).toEqual([[1, 2]]);
  });
});
