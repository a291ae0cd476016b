/**
 * Decode rate of the workload's ~1.3 KB update event on one core, JSON and Confluent Avro.
 * `tsx scripts/bench/decode-bench.ts [--events 200000] [--runs 3]` — prints the median of the runs.
 * Avro runs against an in-process fake registry: after the first fetch the schema is cached, so
 * the figure is the decoder's, not the registry's. The `precise` lines decode a real Debezium
 * 3.6.1 insert (test/fixtures/debezium/) with three NUMERIC columns in `decimal.handling.mode=precise`:
 * scale from the Connect schema (schemas enabled), and from the source options (schemas disabled);
 * `string` is the same row in string mode, for the cost of the decimal decoding itself.
 */
import { parseArgs } from 'node:util';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { ConfluentAvroDecoder } from '../../operators/sources/kafka/confluent-avro.ts';
import { DecimalColumns } from '../../operators/sources/kafka/debezium-decimals.ts';
import { decodeDebeziumJson } from '../../operators/sources/kafka/debezium-json.ts';
import { fixtureMessages } from '../../test/fixtures/debezium/fixtures.ts';
import type { RawMessage } from '../../operators/sources/kafka/raw-message.ts';
import { RegistrySchemaResolver } from '../../operators/sources/kafka/registry-schema-resolver.ts';
import { createOrdersAvroEncoder } from '../workload/avro-encoder.ts';
import { startFakeRegistry } from '../workload/fake-schema-registry.ts';
import { generateWorkload } from '../workload/generator.ts';

const { values } = parseArgs({
  options: { events: { type: 'string', default: '200000' }, runs: { type: 'string', default: '3' } },
});
const events = Number(values.events);
const runs = Number(values.runs);
const BATCH = 500;

function updateEvent() {
  for (const record of generateWorkload({ keys: 100, events: 200 })) {
    if (record.event?.op === 'u' && record.event.before !== null) return record;
  }
  throw new Error('the workload produced no update');
}

function messageOf(key: Buffer, value: Buffer): RawMessage {
  return { topic: 'cdc.ecommerce.orders', partition: 0, offset: '0', key, value, timestampMs: 0 };
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function measure(name: string, bytes: number, decodeBatch: () => Promise<number> | number): Promise<void> {
  await decodeBatch(); // warm-up: JIT and schema cache
  const rates: number[] = [];
  for (let run = 0; run < runs; run++) {
    let decoded = 0;
    const start = process.hrtime.bigint();
    while (decoded < events) decoded += await decodeBatch();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    rates.push(decoded / seconds);
  }
  const rate = median(rates);
  console.log(
    `${name.padEnd(15)} ${bytes} B/event  ${Math.round(rate).toLocaleString('en')} events/s  ${((rate * bytes) / 1e6).toFixed(0)} MB/s  (median of ${runs}: ${rates.map((r) => Math.round(r)).join(', ')})`,
  );
}

async function main(): Promise<void> {
  const record = updateEvent();
  const json = messageOf(record.key, record.value ?? Buffer.alloc(0));
  const jsonBatch = Array.from({ length: BATCH }, () => json);
  await measure('json', json.value?.length ?? 0, () => {
    for (const m of jsonBatch) if (decodeDebeziumJson(m).kind !== 'change') throw new Error('decode failed');
    return BATCH;
  });

  // Real connector output: the insert of id 5 (9999999999.99, a 20-digit scale, a 20-digit integer).
  const real = (name: 'precise-schemas' | 'precise-no-schemas' | 'string-no-schemas', decimals?: DecimalColumns) => {
    const m = fixtureMessages(name)[5] as RawMessage;
    const batch = Array.from({ length: BATCH }, () => m);
    const options = decimals === undefined ? {} : { decimals };
    return measure(name.replace('-no-schemas', '').replace('-schemas', '+schema'), m.value?.length ?? 0, () => {
      for (const x of batch) if (decodeDebeziumJson(x, options).kind !== 'change') throw new Error('decode failed');
      return BATCH;
    });
  };
  await real('precise-schemas');
  await real('precise-no-schemas', new DecimalColumns({ columns: { amount: 2, big: 0 } }));
  await real('string-no-schemas');

  const registry = await startFakeRegistry();
  try {
    const client = new SchemaRegistry({ host: registry.url });
    const frame = (await createOrdersAvroEncoder(client)).encode(record.event ?? updateEvent().event!);
    const decoder = new ConfluentAvroDecoder(new RegistrySchemaResolver(client));
    const avroBatch = Array.from({ length: BATCH }, () => messageOf(record.key, frame));
    await measure('avro', frame.length, async () => {
      const out = await decoder.decodeBatch(avroBatch);
      if (out[0]?.kind !== 'change') throw new Error('decode failed');
      return out.length;
    });
  } finally {
    await registry.close();
  }
}

await main();
