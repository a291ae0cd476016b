/**
 * Real Debezium 3.6.1.Final output (test/fixtures/debezium/interleaved-snapshot.json, captured by
 * capture.ts beside it): the connector was started while two sessions interleaved transactions,
 * on a table with a TOASTed `notes` column under REPLICA IDENTITY DEFAULT. The upsert's table must
 * equal the source table column by column.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TableChange } from '../../../../runtime/index.ts';
import {
  StreamEnvironment,
  UNRESOLVED_CHANGES,
  collectSink,
  fromCollection,
  type UnresolvedChange,
} from '../../../../runtime/index.ts';
import { fixtureEvents, loadDebeziumFixture } from '../../../support/debezium-fixtures.ts';

type Row = Record<string, unknown>;
const fixture = loadDebeziumFixture('interleaved-snapshot.json');
const events = fixtureEvents(fixture);
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function project(): Promise<{ table: Map<number, Row>; unresolved: UnresolvedChange<unknown>[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'cdcflow-real-dbz-'));
  dirs.push(dir);
  const out: TableChange<number, Row>[] = [];
  const unresolved: UnresolvedChange<unknown>[] = [];
  const env = StreamEnvironment.create({
    jobName: 'real-debezium',
    checkpoints: { dir: join(dir, 'chk'), intervalMs: 50 },
    state: { backend: 'memory', dir: join(dir, 'state') },
    log: () => undefined,
  });
  const changes = env
    .fromSource(fromCollection(events, { batchSize: 16 }))
    .keyBy((e) => e.key?.['id'] as number)
    .upsert({ log: () => undefined });
  changes.sinkTo(collectSink(out, { transactional: true }));
  changes.getSideOutput(UNRESOLVED_CHANGES).sinkTo(collectSink(unresolved, { transactional: true }));
  await env.execute();
  const table = new Map<number, Row>();
  for (const change of out) {
    if (change.kind === 'delete') table.delete(change.key);
    else table.set(change.key, change.row);
  }
  return { table, unresolved };
}

describe('upsert on real Debezium output', () => {
  it('the capture holds the hazards: a change committed after the snapshot below its LSN, interleaved LSNs, TOAST placeholders', () => {
    const snapshotLsn = events.find((e) => e.op === 'r')?.source.lsn as number;
    const streamed = events.filter((e) => e.op !== 'r');
    const belowSnapshot = streamed.filter((e) => e.source.lsn <= snapshotLsn);
    expect(belowSnapshot.length).toBeGreaterThan(0);
    // …and its key changes no more after it, so only commit order saves that change.
    const rescued = belowSnapshot.filter((e) =>
      streamed.some((later) => later !== e && later.key?.['id'] === e.key?.['id'] && later.source.lsn > snapshotLsn),
    );
    expect(rescued.length).toBeLessThan(belowSnapshot.length);
    expect(streamed.some((e, i) => i > 0 && e.source.lsn < (streamed[i - 1]?.source.lsn ?? 0))).toBe(true);
    expect(streamed.some((e) => e.after?.['notes'] === '__debezium_unavailable_value')).toBe(true);
  });

  it('commit order: every row status and amount equal the source (a change committed after the snapshot below its LSN is not dropped)', async () => {
    const { table } = await project();
    const plain = (row: Row): Row => ({ id: row['id'], status: row['status'], amount: row['amount'] });
    const actual = [...table.values()].map(plain).sort((a, b) => (a['id'] as number) - (b['id'] as number));
    expect(actual).toEqual(fixture.rows.filter((row) => row['id'] !== 1003).map(plain));
  });

  it('the projected table equals the source table column by column', async () => {
    const { table, unresolved } = await project();
    // Row 4 became 1003 by a primary-key change: Debezium sends d(4) + c(1003), the c without the
    // unchanged TOASTed notes, and there is no stored row of 1003 to take them from.
    const expected = fixture.rows.filter((row) => row['id'] !== 1003);
    const actual = [...table.values()].sort((a, b) => (a['id'] as number) - (b['id'] as number));
    expect(actual).toEqual(expected);
    expect(unresolved.map((u) => [u.event.key, u.columns])).toEqual([[{ id: 1003 }, ['notes']]]);
    expect(JSON.stringify([...table.values()])).not.toContain('__debezium_unavailable_value');
  });
});
