/**
 * Real Postgres → real Debezium 3.6.1.Final → Kafka → cdcflow (upsert) → Postgres two-phase sink,
 * compared with the source table column by column. The connector is started while two sessions
 * interleave transactions (one begins first, commits last), on a table with a TOASTed column under
 * REPLICA IDENTITY DEFAULT; then a TOAST-untouched update, a primary-key change and a delete.
 * Whether a transaction straddles the snapshot point in a given run is timing; the fixture test
 * (test/unit/operators/transform/upsert-real-debezium.test.ts) pins that case deterministically.
 * Needs the shared Kafka Connect worker (STATUS-debezium.md); skipped when it is not reachable.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  StreamEnvironment,
  UNRESOLVED_CHANGES,
  collectSink,
  debeziumSource,
  postgresSink,
  type UnresolvedChange,
} from '../../runtime/index.ts';
import {
  SOURCE_DATABASE_URL,
  connectAvailable,
  startConnector,
  waitForSlot,
  type ConnectorHandle,
} from '../../scripts/debezium/table-connector.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { readMessagesUntil } from '../support/kafka-read.ts';
import { createToastTable, interleavedWrites, sourceRows } from '../../scripts/debezium/source-writes.ts';

const reachable = await connectAvailable();
type Row = Record<string, unknown>;

describe.skipIf(!reachable)('real Debezium: commit order and TOAST end to end', () => {
  const name = uniqueName('cdcflow-order');
  const table = name.replace(/-/g, '_');
  const endpoints = testEndpoints();
  const source = new pg.Client({ connectionString: SOURCE_DATABASE_URL });
  const other = new pg.Client({ connectionString: SOURCE_DATABASE_URL });
  const sink = new pg.Client({ connectionString: endpoints.databaseUrl });
  let connector: ConnectorHandle | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'cdcflow-real-order-'));

  afterAll(async () => {
    await connector?.remove();
    await source.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    await sink.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    await Promise.all([source.end(), other.end(), sink.end()]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the sink table equals the source table column by column', async () => {
    await Promise.all([source.connect(), other.connect(), sink.connect()]);
    await createToastTable(source, table, 400);
    await sink.query(
      `CREATE TABLE ${table} (id int PRIMARY KEY, status text NOT NULL, amount numeric(12,2), notes text)`,
    );
    const stop = { now: false };
    const load = interleavedWrites(source, other, table, { ids: 400, stop, holdMs: 20 });
    connector = await startConnector(name, table);
    await waitForSlot(connector.slot);
    await new Promise((r) => setTimeout(r, 1_000));
    stop.now = true;
    await load;
    await source.query(`UPDATE ${table} SET status = 'toast-untouched' WHERE id = 3`);
    await source.query(`UPDATE ${table} SET id = 1003 WHERE id = 4`);
    await source.query(`DELETE FROM ${table} WHERE id = 5`);
    await source.query(`INSERT INTO ${table} (id, status, amount, notes) VALUES (999, 'end', 1.00, 'end')`);
    // The job reads to the end offsets it finds at start: wait until the last row is in the topic.
    const kafka = new Kafka({ brokers: endpoints.kafkaBrokers.split(','), logLevel: logLevel.NOTHING });
    for (let attempt = 1; ; attempt++) {
      try {
        await readMessagesUntil(kafka, connector.topic, (m) => m.key?.toString() === '{"id":999}', {
          readUncommitted: true,
          timeoutMs: 30_000,
        });
        break;
      } catch (error) {
        if (attempt >= 10) throw error;
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }

    const unresolved: UnresolvedChange<unknown>[] = [];
    const env = StreamEnvironment.create({
      jobName: name,
      checkpoints: { dir: join(dir, 'chk'), intervalMs: 200 },
      state: { backend: 'rocksdb', dir: join(dir, 'state') },
      log: () => undefined,
    });
    const changes = env
      .fromSource(
        debeziumSource<Row>({
          topics: [connector.topic],
          groupId: name,
          brokers: endpoints.kafkaBrokers.split(','),
          bounded: 'latest',
        }),
      )
      .keyBy((e) => e.key?.['id'] as number)
      .upsert({ log: () => undefined });
    changes.sinkTo(postgresSink({ table, primaryKey: ['id'], connectionString: endpoints.databaseUrl }));
    changes.getSideOutput(UNRESOLVED_CHANGES).sinkTo(collectSink(unresolved, { transactional: true }));
    await env.execute();

    const expected = (await sourceRows(source, table)).filter((row) => row['id'] !== 1003);
    const actual = (await sink.query<Row>(`SELECT id, status, amount::text AS amount, notes FROM ${table} ORDER BY id`))
      .rows;
    const differing = expected
      .filter((row, i) => JSON.stringify(row) !== JSON.stringify(actual[i]))
      .map((row) => row['id']);
    expect(actual.length, 'rows in the sink').toBe(expected.length);
    expect(differing, 'ids whose columns differ from the source').toEqual([]);
    // The primary-key change's insert carries the unavailable placeholder and no stored row: not written, reported.
    expect(unresolved.map((u) => u.event.key)).toEqual([{ id: 1003 }]);
  }, 150_000);
});
