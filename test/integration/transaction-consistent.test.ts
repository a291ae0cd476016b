/**
 * Transaction-consistent output on real Debezium output: transactions of 1,000 rows each, a
 * checkpoint every 50 ms, and an observer outside the job polling the Postgres sink table while
 * the job runs: every transaction it ever sees is whole (0 or 1,000 rows). Without the
 * transactionConsistent operator the observer sees transactions split across sink commits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  StreamEnvironment,
  debeziumSource,
  debeziumTransactionSource,
  postgresSink,
  transactionConsistent,
  type TransactionInput,
} from '../../runtime/index.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';

const CONNECT = process.env['KAFKA_CONNECT_URL'] ?? 'http://127.0.0.1:18083';
const endpoints = testEndpoints();
const sourceUrl = (() => {
  const url = new URL(endpoints.databaseUrl);
  url.pathname = '/ecommerce';
  return url.toString();
})();
const TRANSACTIONS = 6;
const ROWS = 1_000;

interface Row {
  readonly id: number;
  readonly tag: string;
}

async function rest(method: string, path: string, body?: unknown): Promise<void> {
  const response = await fetch(`${CONNECT}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!response.ok && response.status !== 404)
    throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('transaction-consistent output (real Debezium → Postgres two-phase)', () => {
  const name = uniqueName('dvtx').replace(/-/g, '_');
  const [sourceTable, sinkTable, connector] = [`${name}_src`, `${name}_sink`, `${name}-connector`];
  const [topic, txTopic] = [`${name}.public.${sourceTable}`, `${name}.transaction`];
  const kafka = new Kafka({ brokers: endpoints.kafkaBrokers.split(','), clientId: name, logLevel: logLevel.NOTHING });
  let source: pg.Client;
  let sink: pg.Client;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cdcflow-dvtx-'));
    source = new pg.Client({ connectionString: sourceUrl });
    sink = new pg.Client({ connectionString: endpoints.databaseUrl });
    await Promise.all([source.connect(), sink.connect()]);
    await source.query(`CREATE TABLE ${sourceTable} (id int PRIMARY KEY, tag text)`);
    await sink.query(`CREATE TABLE ${sinkTable} (id bigint PRIMARY KEY, tag text)`);
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
    await admin.deleteTopics({ topics: [topic, txTopic, `${topic}.dlq`, `${txTopic}.dlq`] }).catch(() => undefined);
    await admin.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  const endOffset = async (t: string): Promise<number> => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      return (await admin.fetchTopicOffsets(t)).reduce((n, p) => n + Number(p.high), 0);
    } finally {
      await admin.disconnect();
    }
  };

  it('a reader of the sink never sees part of a source transaction', async () => {
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
      'provide.transaction.metadata': 'true',
      'key.converter.schemas.enable': 'false',
      'value.converter.schemas.enable': 'false',
      'topic.creation.default.partitions': '1',
      'topic.creation.default.replication.factor': '1',
    });
    await waitFor(
      'the connector to stream',
      async () =>
        (await source.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active', [name])).rowCount ===
        1,
      90_000,
    );
    for (let t = 0; t < TRANSACTIONS; t++) {
      await source.query(
        `INSERT INTO ${sourceTable} SELECT g, 'tx${t}' FROM generate_series(${t * ROWS + 1}, ${(t + 1) * ROWS}) g`,
      );
    }
    await waitFor(
      'every change and marker on the topics',
      async () => (await endOffset(topic)) >= TRANSACTIONS * ROWS && (await endOffset(txTopic)) >= 2 * TRANSACTIONS,
      90_000,
    );

    const env = StreamEnvironment.create({
      jobName: name,
      checkpoints: { dir: join(dir, 'chk'), intervalMs: 50 },
      state: { backend: 'rocksdb', dir: join(dir, 'state') },
      restart: { maxAttempts: 0 },
      log: () => undefined,
    });
    const markers = env
      .fromSource(debeziumTransactionSource({ topics: [txTopic], groupId: `${name}-tx`, bounded: 'latest' }), {
        uid: 'tx-source',
      })
      .map((marker): TransactionInput<Row> => ({ kind: 'marker', marker }));
    env
      .fromSource(
        debeziumSource<Row>({ topics: [topic], groupId: name, bounded: 'latest', maxBufferedBytes: 64 * 1024 }),
        { uid: 'source' },
      )
      .map((event): TransactionInput<Row> => ({ kind: 'change', event }))
      .union(markers)
      .transform('transaction-consistent', () => transactionConsistent<Row>())
      .uid('transaction-consistent')
      .keyBy((event) => event.key?.['id'] as number)
      .upsert()
      .uid('upsert')
      .sinkTo(
        postgresSink<number, Row>({
          connectionString: endpoints.databaseUrl,
          table: sinkTable,
          primaryKey: ['id'],
          name,
        }),
      );

    // The observer: a separate connection polling what a reader of the sink table sees.
    const observed = new Map<string, Set<number>>();
    let running = true;
    const observer = (async () => {
      while (running) {
        const { rows } = await sink.query<{ tag: string; n: string }>(
          `SELECT tag, count(*) AS n FROM ${sinkTable} GROUP BY tag`,
        );
        for (const r of rows) (observed.get(r.tag) ?? observed.set(r.tag, new Set()).get(r.tag))?.add(Number(r.n));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const result = await env.execute().finally(() => (running = false));
    await observer;
    expect(result.restarts).toBe(0);

    const seen = Object.fromEntries([...observed].map(([tag, counts]) => [tag, [...counts].sort((a, b) => a - b)]));
    for (let t = 0; t < TRANSACTIONS; t++) expect(seen[`tx${t}`], JSON.stringify(seen)).toEqual([ROWS]);
    const count = await sink.query<{ n: string }>(`SELECT count(*) AS n FROM ${sinkTable}`);
    expect(Number(count.rows[0]?.n)).toBe(TRANSACTIONS * ROWS);
  }, 90_000);
});
