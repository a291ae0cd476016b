/**
 * The Avro path end to end: the orders workload written in the Confluent wire format through the
 * real schema registry, switching mid-stream to the second schema version (a nullable column
 * added), read by a bounded Debezium source job (keyBy id → upsert → collect). The final table
 * equals the projection oracle; rows written after the switch carry the new column, earlier ones
 * decode with the first version and lack it.
 */
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { afterAll, describe, expect, it } from 'vitest';
import { debeziumSource } from '../../runtime/index.ts';
import { createOrdersAvroEncoder } from '../../scripts/workload/avro-encoder.ts';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { projectionOracle } from '../../scripts/workload/oracle.ts';
import { ORDERS_VALUE_SCHEMA_V1, ORDERS_VALUE_SCHEMA_V2 } from '../../scripts/workload/orders-avro-schema.ts';
import type { OrderEnvelope, OrderRow } from '../../scripts/workload/orders-model.ts';
import { produceWorkload } from '../../scripts/workload/producer.ts';
import type { WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { finalTable, metricTotal, runProjection, testJob, type TestJob } from '../support/source-jobs.ts';

type OrderRowV2 = OrderRow & { discount_code?: string | null };

const WORKLOAD: WorkloadOptions = {
  seed: 7,
  keys: 400,
  events: 3_000,
  partitions: 3,
  duplicateFraction: 0.02,
  duplicateDelay: 40,
};
/** Values (tombstones not counted) written with schema v1; the rest with v2. */
const SWITCH_AT = 1_500;

/** The column v2 adds: set for every third order, null for the others. */
function discountOf(id: number): string | null {
  return id % 3 === 0 ? `SPRING-${id}` : null;
}

function withDiscount(row: OrderRow | null): OrderRowV2 | null {
  return row === null ? null : { ...row, discount_code: discountOf(row.id) };
}

/** The event as the v2 producer writes it: both row images carry the new column. */
function asV2(event: OrderEnvelope): OrderEnvelope {
  return { ...event, before: withDiscount(event.before), after: withDiscount(event.after) };
}

/** Calls `v1` for the first SWITCH_AT values and `v2` after: the same rule for producer and oracle. */
function switchingAt<T>(v1: (e: OrderEnvelope) => T, v2: (e: OrderEnvelope) => T): (e: OrderEnvelope) => T {
  let values = 0;
  return (event) => (values++ < SWITCH_AT ? v1(event) : v2(event));
}

describe('Debezium source: Avro through the schema registry', () => {
  const jobs: TestJob[] = [];
  afterAll(() => jobs.forEach((j) => j.cleanup()));

  it('reads a topic whose schema gains a nullable column mid-stream and matches the projection oracle', async () => {
    const registryUrl = testEndpoints().schemaRegistryUrl;
    const registry = new SchemaRegistry({ host: registryUrl });
    const topic = uniqueName('avro-orders');
    const subject = `${topic}-value`;

    const v1 = await createOrdersAvroEncoder(registry, { subject, schema: ORDERS_VALUE_SCHEMA_V1 });
    const v2 = await createOrdersAvroEncoder(registry, { subject, schema: ORDERS_VALUE_SCHEMA_V2 });
    expect(v2.schemaId).not.toBe(v1.schemaId);
    expect(await registry.getLatestSchemaId(subject)).toBe(v2.schemaId);

    const produced = await produceWorkload({
      brokers: testEndpoints().kafkaBrokers.split(','),
      topic,
      workload: WORKLOAD,
      batchSize: 250,
      encodeValue: switchingAt(v1.encode, (event) => v2.encode(asV2(event))),
    });

    const logical = switchingAt((e) => e, asV2);
    const written = [...generateWorkload(WORKLOAD)].map((r) => ({
      ...r,
      event: r.event === null ? null : logical(r.event),
    }));
    const oracle = projectionOracle(written);
    const afterImages = written.flatMap((r) => (r.event?.after == null ? [] : [r.event.after]));
    expect(produced.records).toBeGreaterThan(WORKLOAD.events as number);

    const job = testJob(uniqueName('avro-projection'));
    jobs.push(job);
    let v2Events = 0;
    let v1Events = 0;
    const source = debeziumSource<OrderRowV2>({
      topics: [topic],
      groupId: uniqueName('avro-group'),
      format: { format: 'avro', registryUrl },
      bounded: 'latest',
    });
    const { result, changes } = await runProjection(job, source, (event) => {
      // Which schema wrote the row is visible in its fields: v1 rows have no discount_code.
      if (event.after === null) return;
      if ('discount_code' in event.after) v2Events += 1;
      else v1Events += 1;
    });

    // Every value was read and none went to the dead-letter topic.
    expect(await metricTotal(result.metrics.registry, 'cdcflow_dead_letters_total')).toBe(0);
    // Each event decoded with the schema it was written with: v1 before the switch, v2 after.
    expect(v1Events).toBe(afterImages.filter((row) => !('discount_code' in row)).length);
    expect(v2Events).toBe(afterImages.filter((row) => 'discount_code' in row).length);
    expect(v1Events).toBeGreaterThan(0);
    expect(v2Events).toBeGreaterThan(0);

    const table = finalTable(changes);
    expect(table.size).toBe(oracle.size);
    expect(new Map([...table].sort(([a], [b]) => a - b))).toEqual(new Map([...oracle].sort(([a], [b]) => a - b)));

    // Rows last written after the switch carry the new column (null or a value); earlier ones lack it.
    const rows = [...table.values()];
    const withColumn = rows.filter((row) => 'discount_code' in row);
    expect(withColumn.some((row) => row.discount_code === null)).toBe(true);
    expect(withColumn.some((row) => typeof row.discount_code === 'string')).toBe(true);
    expect(rows.some((row) => !('discount_code' in row))).toBe(true);
  });
});
