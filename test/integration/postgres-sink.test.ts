import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operator, StreamRecord } from '../../operators/operator.ts';
import { postgresSink } from '../../operators/sinks/postgres/postgres-sink.ts';
import type { SinkDefinition } from '../../operators/sinks/sink.ts';
import { SINK_COMMIT_SECONDS, SINK_VISIBILITY_SECONDS } from '../../operators/sinks/sink-metrics.ts';
import { sinkInstanceName } from '../../operators/sinks/two-phase-commit.ts';
import type { TableChange } from '../../operators/table-change.ts';
import type { ChangeEvent } from '../../runtime/index.ts';
import { streamPosition } from '../../state/change-position.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { RecordingMetrics, recordingOperatorContext } from '../support/operator-context.ts';
import {
  asRecords,
  deleteChange,
  orderEvent,
  runUpsertJobFailingOnce,
  upsertChange,
} from '../support/sink-fixtures.ts';

interface Order {
  readonly id: number;
  readonly status: string;
  readonly amount: string;
}
type Change = TableChange<number, Order>;

const upsert = (id: number, status: string, lsn: number, amount = '10.00'): Change =>
  upsertChange({ id, status, amount }, lsn, Date.now() - 1500);
const del = (id: number, lsn: number): Change => deleteChange(id, lsn, Date.now() - 1500);
const records = (...values: Change[]): StreamRecord<Change>[] => asRecords(...values);

describe('postgres sink (real server)', () => {
  const url = testEndpoints().databaseUrl;
  const jobName = uniqueName('pgsink');
  let client: pg.Client;
  const tables: string[] = [];

  beforeAll(async () => {
    client = new pg.Client({ connectionString: url });
    await client.connect();
  });
  afterAll(async () => {
    // A failed test can leave prepared transactions behind; they would block the drops.
    for (const gid of await preparedOf(jobName)) await client.query(`rollback prepared '${gid}'`);
    for (const t of tables) await client.query(`drop table if exists ${t}`);
    await client.query("delete from cdcflow_sink_commits where sink like $1 || '%'", [jobName]).catch(() => undefined);
    await client.end();
  });

  async function createTable(idempotent = false): Promise<string> {
    const table = uniqueName('orders').replace(/-/g, '_');
    tables.push(table);
    const extra = idempotent ? ', position text, deleted boolean not null default false' : '';
    await client.query(`create table ${table} (id bigint primary key, status text, amount numeric(12,2)${extra})`);
    return table;
  }

  const rows = async (table: string, where = 'true') =>
    (
      await client.query<{ id: string; status: string }>(`select id, status from ${table} where ${where} order by id`)
    ).rows.map((r) => `${r.id}:${r.status}`);
  const preparedOf = async (prefix: string) =>
    (
      await client.query<{ gid: string }>(
        'select gid from pg_prepared_xacts where left(gid, length($1)) = $1 order by gid',
        [prefix],
      )
    ).rows.map((r) => r.gid);

  /** One sink subtask driven by hand: the test plays the runtime (barriers, completions, crashes). */
  async function openSink(
    sink: SinkDefinition<Change>,
    uid: string,
    restored?: unknown,
  ): Promise<{ op: Operator<Change, never>; metrics: RecordingMetrics }> {
    const metrics = new RecordingMetrics();
    const context = recordingOperatorContext(jobName, uid, metrics);
    const op = sink.createOperator();
    await op.open?.(context, restored);
    return { op, metrics };
  }
  const emit = async (op: Operator<Change, never>, values: Change[]) =>
    op.processBatch(records(...values), { emit: () => undefined, emitSide: () => undefined });

  it('keeps records invisible until their checkpoint completes, then commits them', async () => {
    const table = await createTable();
    const { op, metrics } = await openSink(
      postgresSink<number, Order>({ connectionString: url, table, primaryKey: ['id'] }),
      'visible',
    );
    const prefix = `${sinkInstanceName({ jobName, sinkUid: 'visible', subtaskIndex: 0 })}:`;
    await emit(op, [
      upsert(1, 'pending', 1),
      upsert(2, 'pending', 2),
      upsert(3, 'pending', 3),
      upsert(2, 'paid', 4),
      del(3, 5),
    ]);
    expect(await rows(table)).toEqual([]);
    const snapshot = await op.snapshotState?.(1);
    expect(await rows(table)).toEqual([]);
    expect(await preparedOf(prefix)).toEqual([`${prefix}1`]);
    expect(JSON.stringify(snapshot)).toContain(`${prefix}1`);
    await op.notifyCheckpointComplete?.(1);
    expect(await rows(table)).toEqual(['1:pending', '2:paid']);
    expect(await preparedOf(prefix)).toEqual([]);

    await emit(op, [del(1, 6), upsert(4, 'pending', 7)]);
    await op.snapshotState?.(2);
    expect(await rows(table)).toEqual(['1:pending', '2:paid']);
    await op.notifyCheckpointComplete?.(2);
    expect(await rows(table)).toEqual(['2:paid', '4:pending']);
    expect(metrics.counts.get('cdcflow_sink_records_committed_total')).toBe(5);
    // One per change written (key 2's first change was superseded in the buffer), all ≥ 1.5 s old.
    const freshness = metrics.observed(SINK_VISIBILITY_SECONDS);
    expect(freshness).toHaveLength(5);
    expect(Math.min(...freshness)).toBeGreaterThanOrEqual(1.5);
    expect(metrics.observations.get(SINK_VISIBILITY_SECONDS)?.[0]?.labels).toEqual({ sink: 'postgres' });
    expect(metrics.observed(SINK_COMMIT_SECONDS)).toHaveLength(2);
    await op.close?.();
  });

  it('on restore commits what the checkpoint recorded and rolls back the rest', async () => {
    const table = await createTable();
    const sink = postgresSink<number, Order>({
      connectionString: url,
      table,
      primaryKey: ['id'],
      log: () => undefined,
    });
    const prefix = `${sinkInstanceName({ jobName, sinkUid: 'restore', subtaskIndex: 0 })}:`;
    const first = await openSink(sink, 'restore');
    await emit(first.op, [upsert(1, 'pending', 1)]);
    const completed = await first.op.snapshotState?.(7); // metadata durable, then the process died before COMMIT PREPARED
    await emit(first.op, [upsert(2, 'pending', 2), upsert(1, 'paid', 3)]);
    expect(await rows(table)).toEqual([]);
    await first.op.snapshotState?.(8); // prepared, but checkpoint 8 never completed
    expect(await preparedOf(prefix)).toEqual([`${prefix}7`, `${prefix}8`]);
    // "Crash": the first instance is abandoned without close; a restarted one restores checkpoint 7.
    const second = await openSink(sink, 'restore', completed);
    expect(await rows(table)).toEqual(['1:pending']);
    expect(await preparedOf(prefix)).toEqual([]);
    expect(second.metrics.counts.get('cdcflow_sink_rolled_back_total')).toBe(1);
    // The replay after checkpoint 7 writes checkpoint 8's records again, under a new id.
    await emit(second.op, [upsert(2, 'pending', 2), upsert(1, 'paid', 3)]);
    await second.op.snapshotState?.(9);
    await second.op.notifyCheckpointComplete?.(9);
    expect(await rows(table)).toEqual(['1:paid', '2:pending']);
    await second.op.close?.();
  });

  it('treats a repeated commit as done, and a rolled-back transaction as lost', async () => {
    const table = await createTable();
    const sink = postgresSink<number, Order>({
      connectionString: url,
      table,
      primaryKey: ['id'],
      log: () => undefined,
      retry: { commitAttempts: 1 },
    });
    const first = await openSink(sink, 'repeat');
    await emit(first.op, [upsert(1, 'pending', 1)]);
    const snapshot = await first.op.snapshotState?.(3);
    await first.op.notifyCheckpointComplete?.(3);
    await first.op.close?.();
    // Died after COMMIT PREPARED but before anything newer: the restore commits checkpoint 3 again.
    const second = await openSink(sink, 'repeat', snapshot);
    expect(await rows(table)).toEqual(['1:pending']);
    await emit(second.op, [upsert(2, 'pending', 2)]);
    await second.op.snapshotState?.(4);
    const gid = `${sinkInstanceName({ jobName, sinkUid: 'repeat', subtaskIndex: 0 })}:4`;
    await client.query(`rollback prepared '${gid}'`); // someone else threw our prepared work away
    await expect(second.op.notifyCheckpointComplete?.(4)).rejects.toThrow(/gone but never committed/);
    expect(await rows(table)).toEqual(['1:pending']);
    await second.op.close?.();
  });

  it('defers a key held by a prepared transaction of an aborted checkpoint instead of deadlocking', async () => {
    const table = await createTable();
    const sink = postgresSink<number, Order>({
      connectionString: url,
      table,
      primaryKey: ['id'],
      lockTimeoutMs: 3000,
      flushRows: 1,
    });
    const first = await openSink(sink, 'aborted');
    await emit(first.op, [upsert(1, 'pending', 1)]);
    await first.op.snapshotState?.(1); // checkpoint 1 aborts: its transaction stays prepared
    await emit(first.op, [upsert(1, 'paid', 2), upsert(2, 'pending', 3)]); // flushRows 1: written eagerly, except key 1
    const second = (await first.op.snapshotState?.(2)) as { pending: { txn: { deferred?: unknown[] } }[] };
    expect(second.pending.at(-1)?.txn.deferred).toHaveLength(1);
    await first.op.notifyCheckpointComplete?.(2); // commits 1 and 2
    expect(await rows(table)).toEqual(['1:pending', '2:pending']);
    // Restore from 2 (as if we died now): the deferred change comes back and is written next.
    const restored = await openSink(sink, 'aborted', second);
    await restored.op.snapshotState?.(3);
    await restored.op.notifyCheckpointComplete?.(3);
    expect(await rows(table)).toEqual(['1:paid', '2:pending']);
    await restored.op.close?.();
    await first.op.close?.();
  });

  it('writes changes deferred at the final checkpoint when a bounded job closes, once it committed', async () => {
    const table = await createTable();
    const { op } = await openSink(
      postgresSink<number, Order>({ connectionString: url, table, primaryKey: ['id'] }),
      'final',
    );
    await emit(op, [upsert(1, 'pending', 1)]);
    await op.snapshotState?.(1);
    await emit(op, [upsert(1, 'paid', 2)]);
    // The final savepoint's barrier overtook checkpoint 1's completion notice: key 1 is deferred.
    const final = (await op.snapshotState?.(2)) as { pending: { txn: { deferred?: unknown[] } }[] };
    expect(final.pending.at(-1)?.txn.deferred).toHaveLength(1);
    await op.notifyCheckpointComplete?.(2);
    expect(await rows(table)).toEqual(['1:pending']);
    await op.close?.();
    expect(await rows(table)).toEqual(['1:paid']);
  });

  it('idempotent mode: commits at the barrier and ignores replays by LSN, deletes leave tombstones', async () => {
    const table = await createTable(true);
    const sink = postgresSink<number, Order>({ connectionString: url, table, primaryKey: ['id'], mode: 'idempotent' });
    const first = await openSink(sink, 'idem');
    const history = [
      upsert(1, 'pending', 10),
      upsert(2, 'pending', 11),
      upsert(1, 'paid', 12),
      del(2, 13),
      upsert(3, 'pending', 14),
    ];
    await emit(first.op, history);
    expect(await rows(table)).toEqual([]);
    const snapshot = await first.op.snapshotState?.(1);
    expect(await rows(table, 'not deleted')).toEqual(['1:paid', '3:pending']);
    await emit(first.op, [upsert(3, 'shipped', 15)]);
    await first.op.snapshotState?.(2);
    // Restore from checkpoint 1 and replay everything, older events first: nothing goes backwards.
    const second = await openSink(sink, 'idem', snapshot);
    await emit(second.op, [...history, upsert(3, 'shipped', 15)]);
    await second.op.snapshotState?.(3);
    await emit(second.op, [upsert(2, 'pending', 11)]); // a stale insert after the delete
    await second.op.snapshotState?.(4);
    expect(await rows(table, 'not deleted')).toEqual(['1:paid', '3:shipped']);
    expect((await client.query(`select position, deleted from ${table} where id = 2`)).rows).toEqual([
      { position: streamPosition(0, 13), deleted: true },
    ]);
    await second.op.close?.();
    await first.op.close?.();
  });

  it('maps plain records with toChange and batches thousands of rows per checkpoint', async () => {
    const table = await createTable();
    const sink = postgresSink<{ n: number }>({
      connectionString: url,
      table,
      primaryKey: ['id'],
      flushRows: 700,
      toChange: ({ n }) =>
        n % 10 === 9
          ? { kind: 'delete', key: { id: n - 1 } }
          : { kind: 'upsert', row: { id: n, status: `s${n % 4}`, amount: '1.50', ignored: true } },
    });
    const metrics = new RecordingMetrics();
    const op = sink.createOperator();
    await op.open?.(recordingOperatorContext(jobName, 'mapped', metrics), undefined);
    const values = Array.from({ length: 5000 }, (_, n) => ({ value: { n }, timestamp: undefined }));
    for (let i = 0; i < values.length; i += 250)
      await op.processBatch(values.slice(i, i + 250), { emit: () => undefined, emitSide: () => undefined });
    await op.snapshotState?.(1);
    expect((await client.query(`select count(*)::int as n from ${table}`)).rows[0]).toEqual({ n: 0 });
    await op.notifyCheckpointComplete?.(1);
    expect((await client.query(`select count(*)::int as n from ${table}`)).rows[0]).toEqual({ n: 4000 });
    // 4000 upserts and 500 deletes were written; without source times there is no freshness.
    expect(metrics.counts.get('cdcflow_sink_records_committed_total')).toBe(4500);
    expect(metrics.observed(SINK_VISIBILITY_SECONDS)).toEqual([]);
    expect(metrics.observed(SINK_COMMIT_SECONDS)).toHaveLength(1);
    await op.close?.();
  });

  it('writes array and jsonb columns (multi-row VALUES) next to typed unnest batches', async () => {
    const table = uniqueName('docs').replace(/-/g, '_');
    tables.push(table);
    await client.query(`create table ${table} (id text primary key, tags text[], doc jsonb, at timestamptz)`);
    const sink = postgresSink<{ id: string; tags: string[] | null }>({
      connectionString: url,
      table,
      primaryKey: ['id'],
      toChange: (r) =>
        r.tags === null
          ? { kind: 'delete', key: { id: r.id } }
          : {
              kind: 'upsert',
              row: { id: r.id, tags: r.tags, doc: { tags: r.tags, n: r.tags.length }, at: '2024-01-02T03:04:05.678Z' },
            },
    });
    const op = sink.createOperator();
    await op.open?.(recordingOperatorContext(jobName, 'docs'), undefined);
    const batch = [
      { id: 'a', tags: ['x', 'y, "z"'] },
      { id: 'b', tags: [] },
      { id: 'c', tags: ['q'] },
      { id: 'c', tags: null },
    ];
    await op.processBatch(
      batch.map((value) => ({ value, timestamp: undefined })),
      { emit: () => undefined, emitSide: () => undefined },
    );
    await op.snapshotState?.(1);
    await op.notifyCheckpointComplete?.(1);
    const { rows: found } = await client.query(`select id, tags, doc, at from ${table} order by id`);
    expect(found).toEqual([
      {
        id: 'a',
        tags: ['x', 'y, "z"'],
        doc: { tags: ['x', 'y, "z"'], n: 2 },
        at: new Date('2024-01-02T03:04:05.678Z'),
      },
      { id: 'b', tags: [], doc: { tags: [], n: 0 }, at: new Date('2024-01-02T03:04:05.678Z') },
    ]);
    await op.close?.();
  });

  it('names prepared transactions uniquely within the 200-byte gid limit', () => {
    const long = sinkInstanceName({ jobName: 'j'.repeat(150), sinkUid: 'u:'.repeat(80), subtaskIndex: 12 });
    expect(`${long}:9007199254740991`.length).toBeLessThan(200);
    expect(long.split(':')).toHaveLength(3);
    expect(sinkInstanceName({ jobName: 'a', sinkUid: 'b:1', subtaskIndex: 2 })).not.toBe(
      sinkInstanceName({ jobName: 'a', sinkUid: 'b_1', subtaskIndex: 2 }),
    );
    expect(sinkInstanceName({ jobName: 'orders', sinkUid: 'pg-sink', subtaskIndex: 0 })).toBe('orders:pg-sink:0');
  });

  it('runs in a job: the table equals the projection after a failure and a restore', async () => {
    const table = await createTable();
    const dir = mkdtempSync(join(tmpdir(), 'cdcflow-pgsink-'));
    try {
      const events: ChangeEvent<Order>[] = [];
      const latest = new Map<number, string | null>();
      for (let lsn = 1; lsn <= 3000; lsn++) {
        const id = 1 + ((lsn * 7919) % 400);
        const op = lsn % 23 === 0 ? 'd' : latest.has(id) && latest.get(id) !== null ? 'u' : 'c';
        const row = { id, status: `s${lsn}`, amount: `${lsn}.00` };
        latest.set(id, op === 'd' ? null : row.status);
        events.push(orderEvent(lsn, op, row));
      }
      const result = await runUpsertJobFailingOnce({
        jobName: `${jobName}-job`,
        dir,
        events,
        failAt: 1700,
        sink: postgresSink<number, Order>({ connectionString: url, table, primaryKey: ['id'], log: () => undefined }),
      });
      expect(result.restarts).toBe(1);
      const expected = [...latest]
        .filter(([, s]) => s !== null)
        .sort(([a], [b]) => a - b)
        .map(([id, s]) => `${id}:${s}`);
      expect(await rows(table)).toEqual(expected);
      expect(await preparedOf(`${jobName}-job:`)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
