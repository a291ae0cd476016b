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

describe('real Debezium source (test support)', () => {
  let source: RealOrdersSource | undefined;
  afterAll(async () => {
    await source?.cleanup();
  });

  it('streams a snapshot taken under load and every kind of change, then gives its slot back', async () => {
    source = await RealOrdersSource.create('dbz-source');
    await seedOrders(source.databaseUrl, source.table, 300);
    const load = source.workload({ seed: 7, seededRows: 300, maxChanges: 3000, maxDurationMs: 20_000, ratePerSecond: 1500, bigTransactionRows: 1000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const names = await source.startConnector();
    const report = await load.done;
    expect(report.byKind['big-transaction']).toBe(1000);
    // A last marker row, written after the workload: the topic is complete when it arrives.
    await source.query(`INSERT INTO ${source.table} (id, status) VALUES (999999999, 'marker')`);
    const kafka = new Kafka({ brokers: testEndpoints().kafkaBrokers.split(','), logLevel: logLevel.NOTHING });
    const messages = await readMessagesUntil(kafka, names.topic, (m: KafkaMessage) => m.key?.toString() === '{"id":999999999}');
    const events = messages.flatMap((m) => (m.value === null ? [] : [JSON.parse(m.value.toString()) as Envelope]));
    const ops = new Set(events.map((e) => e.op));
    expect([...ops].sort()).toEqual(['c', 'd', 'r', 'u']);
    expect(events.every((e) => typeof e.source.sequence === 'string')).toBe(true);
    await source.cleanup();
    const slots = await source.query('select 1 from pg_replication_slots where slot_name = $1', [names.slot]);
    expect(slots).toHaveLength(0);
    source = undefined;
  });
});
