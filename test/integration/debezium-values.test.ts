/**
 * Real Debezium 3.6.1.Final (the stack's Kafka Connect) → cdcflow → Postgres two-phase sink, compared
 * with the source table itself, column by column: NUMERIC with negative values under the
 * connector's default decimal.handling.mode=precise (JSON converter without schemas, the scale
 * given in the source options; a NUMERIC without scale arrives self-describing), and TRUNCATE
 * with upsert({ truncate: 'propagate' }). Before the fix the sink crashed on positive base64 amounts
 * and kept every truncated row.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamEnvironment, debeziumSource, postgresSink } from '../../runtime/index.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';

const CONNECT = process.env['KAFKA_CONNECT_URL'] ?? 'http://127.0.0.1:18083';
const endpoints = testEndpoints();
const sourceUrl = (() => {
  const url = new URL(endpoints.databaseUrl);
  url.pathname = '/ecommerce';
  return url.toString();
})();

interface Row {
  readonly id: number;
  readonly amount: string | null;
  readonly ratio: string | null;
  readonly note: string | null;
}

async function rest(method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${CONNECT}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok && response.status !== 404) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text.length > 0 ? (JSON.parse(text) as unknown) : undefined;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('real Debezium → cdcflow → Postgres: decimals and TRUNCATE', () => {
  const name = uniqueName('dv').replace(/-/g, '_');
  const sourceTable = `${name}_src`;
  const sinkTable = `${name}_sink`;
  const connector = `${name}-connector`;
  const topic = `${name}.public.${sourceTable}`;
  const kafka = new Kafka({ brokers: endpoints.kafkaBrokers.split(','), clientId: name, logLevel: logLevel.NOTHING });
  let source: pg.Client;
  let sink: pg.Client;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cdcflow-dv-'));
    source = new pg.Client({ connectionString: sourceUrl });
    sink = new pg.Client({ connectionString: endpoints.databaseUrl });
    await Promise.all([source.connect(), sink.connect()]);
    await source.query(
      `CREATE TABLE ${sourceTable} (id int PRIMARY KEY, amount numeric(12,2), ratio numeric, note text)`,
    );
    await sink.query(
      `CREATE TABLE ${sinkTable} (id bigint PRIMARY KEY, amount numeric(12,2), ratio numeric, note text)`,
    );
  });

  afterAll(async () => {
    await rest('DELETE', `/connectors/${connector}`).catch(() => undefined);
    await waitFor(
      'the slot to be released',
      async () =>
        (await source.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active', [name])).rowCount ===
        0,
      20_000,
    ).catch(() => undefined);
    await source
      .query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [name])
      .catch(() => undefined);
    await source.query(`DROP PUBLICATION IF EXISTS ${name}`).catch(() => undefined);
    await source.query(`DROP TABLE IF EXISTS ${sourceTable}`);
    await sink.query(`DROP TABLE IF EXISTS ${sinkTable}`);
    await sink.query("DELETE FROM cdcflow_sink_commits WHERE sink LIKE $1 || '%'", [name]).catch(() => undefined);
    await Promise.all([source.end(), sink.end()]);
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic, `${topic}.dlq`] }).catch(() => undefined);
    await admin.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  const endOffset = async (): Promise<number> => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);
    } finally {
      await admin.disconnect();
    }
  };
  const rowsOf = async (client: pg.Client, table: string) =>
    (
      await client.query<{ id: string; amount: string | null; ratio: string | null; note: string | null }>(
        `SELECT id::text, amount::text, ratio::text, note FROM ${table} ORDER BY id`,
      )
    ).rows;

  it('ends with the sink table equal to the source table', async () => {
    // Snapshot rows, negative amounts among them (-26588.24 is "1234" in base64: all digits).
    await source.query(
      `INSERT INTO ${sourceTable} VALUES (1, 100.00, 1.5, 'a'), (2, -26588.24, -0.000001, 'b'), (3, 0.07, NULL, NULL), (4, -0.01, 123456789012345678901234.5, 'd')`,
    );
    await rest('PUT', `/connectors/${connector}/config`, {
      'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
      'tasks.max': '1',
      'database.hostname': new URL(sourceUrl).hostname,
      'database.port': new URL(sourceUrl).port,
      'database.user': 'cdcflow',
      'database.password': 'cdcflow',
      'database.dbname': 'ecommerce',
      'plugin.name': 'pgoutput',
      'topic.prefix': name,
      'table.include.list': `public.${sourceTable}`,
      'slot.name': name,
      'publication.name': name,
      'publication.autocreate.mode': 'filtered',
      // Debezium's defaults, spelled out: precise decimals; truncates are skipped unless asked for.
      'decimal.handling.mode': 'precise',
      'skipped.operations': 'none',
      'key.converter.schemas.enable': 'false',
      'value.converter.schemas.enable': 'false',
      'topic.creation.default.partitions': '1',
      'topic.creation.default.replication.factor': '1',
    });
    await waitFor('the snapshot', async () => (await endOffset()) >= 4);
    await source.query('BEGIN');
    await source.query(`INSERT INTO ${sourceTable} VALUES (5, 26588.24, 2, 'e'), (6, -99999.99, -7.25, 'f')`);
    await source.query(`UPDATE ${sourceTable} SET amount = -12.34 WHERE id = 1`);
    await source.query(`DELETE FROM ${sourceTable} WHERE id = 3`);
    await source.query('COMMIT');
    await source.query(`TRUNCATE ${sourceTable}`);
    await source.query(
      `INSERT INTO ${sourceTable} VALUES (2, -26588.24, -0.5, 'b2'), (7, 9999999999.99, 0.00000000000000000001, 'g'), (8, -1.00, -3, NULL)`,
    );
    await source.query(`UPDATE ${sourceTable} SET amount = -0.03, note = 'g2' WHERE id = 7`);
    // 4 snapshot + 4 in the transaction (+1 tombstone) + truncate + 3 inserts + 1 update.
    await waitFor('every change on the topic', async () => (await endOffset()) >= 4 + 5 + 1 + 3 + 1);

    const env = StreamEnvironment.create({
      jobName: name,
      checkpoints: { dir: join(dir, 'chk'), intervalMs: 300 },
      state: { backend: 'rocksdb', dir: join(dir, 'state') },
      restart: { maxAttempts: 0 },
      log: () => undefined,
    });
    env
      .fromSource(
        debeziumSource<Row>({
          topics: [topic],
          groupId: name,
          bounded: 'latest',
          decimals: { handling: 'precise', columns: { [`${sourceTable}.amount`]: 2 } },
        }),
        { uid: 'source' },
      )
      .keyBy((event) => event.key?.['id'] as number)
      .upsert({ truncate: 'propagate' })
      .uid('upsert')
      .sinkTo(
        postgresSink<number, Row>({
          connectionString: endpoints.databaseUrl,
          table: sinkTable,
          primaryKey: ['id'],
          name,
        }),
      );
    const result = await env.execute();
    expect(result.restarts).toBe(0);

    const expected = await rowsOf(source, sourceTable);
    expect(expected.map((r) => r.id)).toEqual(['2', '7', '8']);
    expect(await rowsOf(sink, sinkTable)).toEqual(expected);
  }, 90_000);
});
