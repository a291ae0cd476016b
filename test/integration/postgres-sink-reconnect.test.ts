/**
 * The two-phase Postgres sink when its connections drop (through test/support/tcp-proxy.ts, the
 * shared server is untouched). Pins what test/chaos/postgres-outage.test.ts found: a commit retried
 * on the session that dropped can never succeed (pg: "Client has encountered a connection error
 * and is not queryable"), so every retry of a commit failed until the job restarted; now a retry
 * opens a new session — and a drop that took an open transaction with it fails the sink
 * (retriable) instead of letting later writes run outside a transaction. And a silent partition
 * (no reset: the statement's answer never comes) fails the statement after `queryTimeoutMs` and
 * drops its session, where it used to wait for TCP to give up (~15 min).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operator, StreamRecord } from '../../operators/operator.ts';
import { PostgresSinkError } from '../../operators/sinks/postgres/pg-session.ts';
import { postgresSink } from '../../operators/sinks/postgres/postgres-sink.ts';
import { sinkInstanceName } from '../../operators/sinks/two-phase-commit.ts';
import type { TableChange } from '../../operators/table-change.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { recordingOperatorContext } from '../support/operator-context.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { streamPosition } from '../../state/change-position.ts';

interface Order {
  readonly id: number;
  readonly status: string;
}
type Change = TableChange<number, Order>;

const url = testEndpoints().databaseUrl;
const jobName = uniqueName('pg-reconnect');
const upsert = (id: number, status: string, lsn: number): Change => ({
  kind: 'upsert',
  key: id,
  row: { id, status },
  previous: null,
  position: streamPosition(0, lsn),
  sourceTsMs: Date.now(),
});
const records = (...values: Change[]): StreamRecord<Change>[] =>
  values.map((value) => ({ value, timestamp: undefined }));
const noOutput = { emit: () => undefined, emitSide: () => undefined };
const logged: string[] = [];
let client: pg.Client;
let proxy: TcpProxy;
const tables: string[] = [];
const operators: Operator<Change, never>[] = [];

beforeAll(async () => {
  client = new pg.Client({ connectionString: url });
  await client.connect();
  const target = new URL(url);
  proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
});

afterAll(async () => {
  for (const op of operators) await op.close?.()?.catch(() => undefined);
  await proxy.close();
  const { rows } = await client.query<{ gid: string }>(
    'select gid from pg_prepared_xacts where left(gid, length($1)) = $1',
    [jobName],
  );
  for (const { gid } of rows) await client.query(`rollback prepared '${gid}'`);
  for (const t of tables) await client.query(`drop table if exists ${t}`);
  await client.query("delete from cdcflow_sink_commits where sink like $1 || '%'", [jobName]).catch(() => undefined);
  await client.end();
});

async function createTable(): Promise<string> {
  const table = uniqueName('orders').replace(/-/g, '_');
  tables.push(table);
  await client.query(`create table ${table} (id bigint primary key, status text)`);
  return table;
}

const rows = async (table: string) =>
  (await client.query<{ id: string; status: string }>(`select id, status from ${table} order by id`)).rows.map(
    (r) => `${r.id}:${r.status}`,
  );
const preparedOf = async (uid: string) =>
  (
    await client.query<{ gid: string }>('select gid from pg_prepared_xacts where left(gid, length($1)) = $1', [
      sinkInstanceName({ jobName, sinkUid: uid, subtaskIndex: 0 }),
    ])
  ).rows.map((r) => r.gid);

async function openSink(
  table: string,
  uid: string,
  restored?: unknown,
  queryTimeoutMs?: number,
): Promise<Operator<Change, never>> {
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  const sink = postgresSink<number, Order>({
    connectionString: proxied.toString(),
    table,
    primaryKey: ['id'],
    flushRows: 1,
    ...(queryTimeoutMs === undefined ? {} : { lockTimeoutMs: 500, queryTimeoutMs }),
    retry: { commitAttempts: 10, initialBackoffMs: 50, maxBackoffMs: 400 },
    log: (line) => logged.push(line),
  });
  const op = sink.createOperator();
  operators.push(op);
  await op.open?.(recordingOperatorContext(jobName, uid), restored);
  return op;
}

/** Cuts every connection through the proxy and accepts new ones again after `ms`. */
async function outage(ms: number): Promise<Promise<void>> {
  await proxy.cut();
  return new Promise<void>((resolve) => setTimeout(resolve, ms)).then(() => proxy.restore());
}

describe('postgres sink across dropped connections (real server, through a proxy)', () => {
  it('commits a prepared transaction on a new session when the old one dropped', async () => {
    const table = await createTable();
    const op = await openSink(table, 'commit-after-drop');
    await op.processBatch(records(upsert(1, 'pending', 1), upsert(2, 'paid', 2)), noOutput);
    await op.snapshotState?.(1);
    expect(await preparedOf('commit-after-drop')).toHaveLength(1);
    const back = await outage(300);
    // Before the fix every retry ran on the dropped session and this rejected after 10 attempts.
    await op.notifyCheckpointComplete?.(1);
    await back;
    expect(await rows(table)).toEqual(['1:pending', '2:paid']);
    expect(await preparedOf('commit-after-drop')).toEqual([]);
    // The writer had no transaction open: it reconnects too, and the sink carries on in-process.
    await op.processBatch(records(upsert(3, 'shipped', 3)), noOutput);
    await op.snapshotState?.(2);
    await op.notifyCheckpointComplete?.(2);
    expect(await rows(table)).toEqual(['1:pending', '2:paid', '3:shipped']);
    expect(logged.some((l) => l.includes('dropped; reconnecting'))).toBe(true);
  });

  it('fails (retriable) when the drop took an open transaction, and a restore writes nothing twice', async () => {
    const table = await createTable();
    const op = await openSink(table, 'open-txn-drop');
    await op.processBatch(records(upsert(1, 'pending', 1)), noOutput);
    const checkpoint1 = await op.snapshotState?.(1);
    await op.notifyCheckpointComplete?.(1);
    // Written into the open transaction of checkpoint 2 (flushRows 1), then the connection drops.
    await op.processBatch(records(upsert(2, 'paid', 2)), noOutput);
    await await outage(200);
    const failure = await Promise.resolve(op.processBatch(records(upsert(3, 'paid', 3)), noOutput)).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(PostgresSinkError);
    expect((failure as PostgresSinkError).retriable).toBe(true);
    expect(String((failure as Error).message)).toContain('dropped with a transaction open');
    await op.close?.();
    // What the runtime does next: a new attempt restores checkpoint 1 and replays 2 and 3.
    const restored = await openSink(table, 'open-txn-drop', checkpoint1);
    await restored.processBatch(records(upsert(2, 'paid', 2), upsert(3, 'paid', 3)), noOutput);
    await restored.snapshotState?.(2);
    await restored.notifyCheckpointComplete?.(2);
    expect(await rows(table)).toEqual(['1:pending', '2:paid', '3:paid']);
    expect(await preparedOf('open-txn-drop')).toEqual([]);
  });

  it('fails a statement that gets no answer (silent partition) and commits on a new session once healed', async () => {
    const table = await createTable();
    const op = await openSink(table, 'blackhole', undefined, 1_500);
    await op.processBatch(records(upsert(1, 'pending', 1)), noOutput);
    await op.snapshotState?.(1);
    proxy.blackhole();
    const healed = new Promise<void>((resolve) => setTimeout(resolve, 2_500)).then(() => proxy.heal());
    // Before: COMMIT PREPARED waited on the dead connection with no end in sight.
    await op.notifyCheckpointComplete?.(1);
    await healed;
    expect(await rows(table)).toEqual(['1:pending']);
    expect(await preparedOf('blackhole')).toEqual([]);
    expect(logged.some((l) => l.includes('control connection to Postgres dropped'))).toBe(true);
  });
});
