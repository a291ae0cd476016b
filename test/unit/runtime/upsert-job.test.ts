import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeEvent, TableChange } from '../../../runtime/index.ts';
import { StreamEnvironment, collectSink, fromCollection } from '../../../runtime/index.ts';
import { streamPosition } from '../../../state/change-position.ts';
import { testChangeEvent } from '../../support/change-events.ts';

interface Row {
  readonly id: number;
  readonly status: string;
}

function change(id: number, op: ChangeEvent<Row>['op'], lsn: number, status = 'pending'): ChangeEvent<Row> {
  return testChangeEvent(op, lsn, op === 'd' ? null : { id, status }, { id });
}

describe('upsert job on a bounded source', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  for (const backend of ['memory', 'rocksdb'] as const) {
    it(`keeps the row last in commit order per key and drops replays (${backend})`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cdcflow-upsert-'));
      dirs.push(dir);
      const events = [
        change(1, 'c', 10),
        change(2, 'c', 11),
        change(1, 'u', 12, 'paid'),
        change(1, 'u', 10),
        change(2, 'd', 13),
        change(2, 'c', 11),
        change(3, 'r', 5),
      ];
      const out: TableChange<number, Row>[] = [];
      const env = StreamEnvironment.create({
        jobName: 'upsert-test',
        checkpoints: { dir: join(dir, 'chk'), intervalMs: 50 },
        state: { backend, dir: join(dir, 'state') },
        log: () => undefined,
      });
      env
        .fromSource(fromCollection(events, { batchSize: 2 }))
        .keyBy((e) => e.key?.['id'] as number)
        .upsert()
        .sinkTo(collectSink(out, { transactional: true }));
      const result = await env.execute();
      expect(result.restarts).toBe(0);
      const latest = new Map<number, TableChange<number, Row>>();
      for (const c of out) latest.set(c.key, c);
      expect(latest.get(1)).toMatchObject({ kind: 'upsert', row: { status: 'paid' }, position: streamPosition(0, 12) });
      expect(latest.get(2)).toMatchObject({ kind: 'delete', position: streamPosition(0, 13) });
      expect(latest.get(3)).toMatchObject({ kind: 'upsert', position: streamPosition(0, 5) });
      expect(out).toHaveLength(5); // the stale update of 1 and the replayed insert of 2 are dropped
    });
  }
});
