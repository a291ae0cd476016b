/**
 * The real-CDC test support itself: a unique source table, the SQL workload, and a Debezium
 * connector started while the writes run. Pins what the other real-Debezium tests rely on: every
 * operation kind reaches the topic, with `source.sequence`, and the cleanup gives the slot back.
 */
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { RealOrdersSource, seedOrders } from '../support/debezium/index.ts';
import { testEndpoints } from '../support/endpoints.ts';
import { readMessagesUntil } from '../support/kafka-read.ts';

interface Envelope {
  readonly op: string;
  readonly source: { readonly sequence: string; readonly lsn: number; readonly snapshot: string };
}

/** Connect creates a connector's topics at its first record; subscribing earlier fails. */
async function topicsExist(kafka: Kafka, topics: readonly string[], timeoutMs = 30_000): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (const deadline = Date.now() + timeoutMs; ;) {
      const existing = new Set(await admin.listTopics());
      if (topics.every((t) => existing.has(t))) return;
      if (Date.now() > deadline) throw new Error(`topics ${topics.join(', ')} not created within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await admin.disconnect();
  }
}

describe('real Debezium source (test support)', () => {
  let source: RealOrdersSource | undefined;
  afterAll(async () => {
    await source?.cleanup();
  });

  it('streams a snapshot taken under load and every kind of change, then gives its slot back', async () => {
    source = await RealOrdersSource.create('dbz-source');
    await seedOrders(source.databaseUrl, source.table, 300);
    const load = source.workload({
      seed: 7,
      seededRows: 300,
      maxChanges: 3000,
      maxDurationMs: 20_000,
      ratePerSecond: 1500,
      bigTransactionRows: 1000,
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const names = await source.startConnector();
    const report = await load.done;
    expect(report.byKind['big-transaction']).toBe(1000);
    // A last marker row, written after the workload: the topic is complete when it arrives.
    await source.query(`INSERT INTO ${source.table} (id, status) VALUES (999999999, 'marker')`);
    const kafka = new Kafka({ brokers: testEndpoints().kafkaBrokers.split(','), logLevel: logLevel.NOTHING });
    const messages = await readMessagesUntil(
      kafka,
      names.topic,
      (m: KafkaMessage) => m.key?.toString() === '{"id":999999999}',
    );
    const events = messages.flatMap((m) => (m.value === null ? [] : [JSON.parse(m.value.toString()) as Envelope]));
    const ops = new Set(events.map((e) => e.op));
    expect([...ops].sort()).toEqual(['c', 'd', 'r', 'u']);
    expect(events.every((e) => typeof e.source.sequence === 'string')).toBe(true);
    await source.cleanup();
    const slots = await source.query('select 1 from pg_replication_slots where slot_name = $1', [names.slot]);
    expect(slots).toHaveLength(0);
    source = undefined;
  });

  it('registers a connector with schemas, precise decimals and transaction metadata (BEGIN/END on <prefix>.transaction)', async () => {
    source = await RealOrdersSource.create('dbz-source-tx');
    const names = await source.startConnector({
      schemasEnable: true,
      decimalHandling: 'precise',
      transactionMetadata: true,
    });
    await source.query(`BEGIN; INSERT INTO ${source.table} (id, amount) VALUES (1, -26588.24), (2, 12.5); COMMIT;`);
    const kafka = new Kafka({ brokers: testEndpoints().kafkaBrokers.split(','), logLevel: logLevel.NOTHING });
    await topicsExist(kafka, [names.transactionTopic, names.topic]);
    const tx = await readMessagesUntil(kafka, names.transactionTopic, (m) =>
      (m.value?.toString() ?? '').includes('"END"'),
    );
    const end = JSON.parse(tx.at(-1)?.value?.toString() ?? '{}') as {
      payload: { status: string; event_count: number };
    };
    expect(end.payload).toMatchObject({ status: 'END', event_count: 2 });
    const rows = await readMessagesUntil(kafka, names.topic, (m) => m.key?.toString().includes('"id":2') === true);
    const first = JSON.parse(rows[0]?.value?.toString() ?? '{}') as {
      schema: unknown;
      payload: { after: { amount: string }; transaction: { id: string } };
    };
    expect(first.schema).toBeDefined();
    // precise: base64 of the unscaled two's-complement bytes (-2658824 → d7 6d f8), scale in the schema.
    expect(first.payload.after.amount).toBe(Buffer.from([0xd7, 0x6d, 0xf8]).toString('base64'));
    expect(first.payload.transaction.id).toBeTruthy();
  });
});
