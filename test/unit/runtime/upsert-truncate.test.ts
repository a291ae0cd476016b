import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TruncateRefusedError } from '../../../operators/transform/upsert-truncate.ts';
import type { ChangeEvent, TableChange } from '../../../runtime/index.ts';
import { StreamEnvironment, collectSink, fromCollection } from '../../../runtime/index.ts';
import { testChangeEvent } from '../../support/change-events.ts';

interface Row {
  readonly id: number;
  readonly status: string;
}

function change(id: number | null, op: ChangeEvent<Row>['op'], lsn: number, status = 'pending'): ChangeEvent<Row> {
  const row = id === null ? null : { id, status };
  return testChangeEvent(op, lsn, op === 'd' || op === 't' ? null : row, id === null ? null : { id });
}

/** The table the changelog describes: key → row, after applying every change in order. */
function tableOf(changes: readonly TableChange<number, Row>[]): Map<number, Row> {
  const table = new Map<number, Row>();
  for (const c of changes) {
    if (c.kind === 'upsert') table.set(c.key, c.row);
    else table.delete(c.key);
  }
  return table;
}

describe('TRUNCATE in the upsert', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  async function run(
    events: ChangeEvent<Row>[],
    backend: 'memory' | 'rocksdb',
    truncate?: 'fail' | 'propagate',
  ): Promise<TableChange<number, Row>[]> {
    const dir = mkdtempSync(join(tmpdir(), 'cdcflow-truncate-'));
    dirs.push(dir);
    const out: TableChange<number, Row>[] = [];
    const env = StreamEnvironment.create({
      jobName: 'truncate-test',
      checkpoints: { dir: join(dir, 'chk'), intervalMs: 50 },
      state: { backend, dir: join(dir, 'state') },
      restart: { maxAttempts: 0 },
      log: () => undefined,
    });
    env
      .fromSource(fromCollection(events, { batchSize: 3 }))
      .keyBy((e) => e.key?.['id'] as number)
      .upsert(truncate === undefined ? {} : { truncate })
      .sinkTo(collectSink(out, { transactional: true }));
    await env.execute();
    return out;
  }

  for (const backend of ['memory', 'rocksdb'] as const) {
    it(`propagate: rows committed before the truncate are deleted downstream and stay deleted (${backend})`, async () => {
      const events = [
        change(1, 'c', 10),
        change(2, 'c', 11),
        change(3, 'c', 12),
        // Committed after the truncate (LSN 30 > 20) but processed before it (another partition).
        change(2, 'u', 30, 'paid'),
        change(null, 't', 20),
        // Committed before the truncate, processed after it: must not come back.
        change(4, 'c', 15),
        change(3, 'u', 13, 'stale'),
        change(5, 'c', 25),
      ];
      const out = await run(events, backend, 'propagate');
      expect(
        out
          .filter((c) => c.kind === 'delete')
          .map((c) => c.key)
          .sort(),
      ).toEqual([1, 3]);
      expect([...tableOf(out)].sort()).toEqual([
        [2, { id: 2, status: 'paid' }],
        [5, { id: 5, status: 'pending' }],
      ]);
    });
  }

  it('fail (the default): the job stops with instructions instead of keeping rows the source no longer has', async () => {
    // Before: the truncate was counted and ignored; the target kept every row.
    const run1 = run([change(1, 'c', 10), change(null, 't', 20)], 'memory');
    await expect(run1).rejects.toThrow(TruncateRefusedError);
    await expect(run1).rejects.toThrow(/truncate: 'propagate'/);
  });
});
