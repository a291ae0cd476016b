/**
 * Bad input against the real broker and schema registry: valid Debezium events mixed with messages
 * no decoder can use. Each bad message lands in the dead-letter topic (`<topic>.dlq`) with its
 * original bytes, where it came from and why (`cdcflow.dlq.*` headers); the job runs on without a
 * restart, every valid event reaches the upsert table, and `cdcflow_dead_letters_total` rises by
 * the number of bad messages.
 */
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Kafka, Message } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import type { DeadLetterKind } from '../../operators/sources/kafka/dead-letter.ts';
import { DLQ_HEADERS } from '../../operators/sources/kafka/dead-letter.ts';
import { writeWireFrame } from '../../operators/sources/kafka/confluent-wire.ts';
import { debeziumSource } from '../../runtime/index.ts';
import type { DebeziumSourceOptions } from '../../runtime/index.ts';
import { createOrdersAvroEncoder, type OrdersAvroEncoder } from '../../scripts/workload/avro-encoder.ts';
import { generateWorkload, type WorkloadRecord } from '../../scripts/workload/generator.ts';
import { projectionOracle } from '../../scripts/workload/oracle.ts';
import type { OrderEnvelope, OrderRow } from '../../scripts/workload/orders-model.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import {
  createTopic,
  finalTable,
  metricTotal,
  produce,
  readTopic,
  runProjection,
  testJob,
  testKafka,
  type TestJob,
} from '../support/source-jobs.ts';

const PARTITIONS = 2;
const WORKLOAD = { seed: 11, keys: 150, events: 1_000, partitions: PARTITIONS };

/** A message no decoder can use, and the dead-letter kinds it may be filed under. */
interface BadMessage {
  readonly name: string;
  readonly value: Buffer;
  readonly kinds: readonly DeadLetterKind[];
}

/** Where a bad message was written, as the dead-letter headers must report it. */
interface Placed extends BadMessage {
  readonly key: Buffer;
  readonly partition: number;
  readonly offset: string;
}

/** A valid event turned into something else: its envelope with `patch` applied. */
function sampleEvent(patch: Record<string, unknown>): Record<string, unknown> {
  const first = generateWorkload({ ...WORKLOAD, events: WORKLOAD.keys }).next().value as WorkloadRecord;
  return { ...(first.event as OrderEnvelope), ...patch };
}

function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

const GARBAGE = Buffer.from([0xff, 0xfe, 0x00, 0x13, 0x37, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1]);

function jsonBadMessages(): BadMessage[] {
  const withoutOp = sampleEvent({});
  delete withoutOp['op'];
  return [
    { name: 'garbage bytes', value: GARBAGE, kinds: ['undecodable'] },
    { name: 'text that is not JSON', value: Buffer.from('order 42 shipped'), kinds: ['undecodable'] },
    { name: 'JSON without op', value: jsonBytes(withoutOp), kinds: ['malformed'] },
    { name: 'unknown op', value: jsonBytes(sampleEvent({ op: 'x' })), kinds: ['unknown-op'] },
  ];
}

function avroBadMessages(encoder: OrdersAvroEncoder): BadMessage[] {
  return [
    // A JSON producer writing to the Avro topic: '{' where the magic byte should be.
    { name: 'wrong magic byte', value: jsonBytes(sampleEvent({})), kinds: ['bad-magic-byte'] },
    {
      name: 'unknown schema id',
      value: writeWireFrame(1_999_999_999, encoder.encode(sampleEvent({}) as unknown as OrderEnvelope).subarray(5)),
      kinds: ['unknown-schema'],
    },
    {
      name: 'garbage body under a known schema id',
      value: writeWireFrame(encoder.schemaId, GARBAGE),
      kinds: ['undecodable', 'truncated'],
    },
    {
      name: 'unknown op in Avro',
      value: encoder.encode(sampleEvent({ op: 'x' }) as unknown as OrderEnvelope),
      kinds: ['unknown-op'],
    },
  ];
}

/**
 * The workload's messages with the bad ones spread between them, each on a partition of its own
 * choosing; offsets follow from the order (a fresh topic, no transactions).
 */
function interleave(
  valid: readonly WorkloadRecord[],
  bad: readonly BadMessage[],
  encode: (r: WorkloadRecord) => Buffer | null,
): { messages: Message[]; placed: Placed[] } {
  const next = new Array<number>(PARTITIONS).fill(0);
  const messages: Message[] = [];
  const placed: Placed[] = [];
  const push = (key: Buffer, value: Buffer | null, partition: number): string => {
    messages.push({ key, value, partition });
    const offset = next[partition] ?? 0;
    next[partition] = offset + 1;
    return String(offset);
  };
  const every = Math.floor(valid.length / (bad.length + 1));
  valid.forEach((record, i) => {
    push(record.key, encode(record), record.partition);
    const b = (i + 1) % every === 0 ? bad[(i + 1) / every - 1] : undefined;
    if (b === undefined) return;
    const key = jsonBytes({ id: 900_000 + placed.length });
    const partition = placed.length % PARTITIONS;
    placed.push({ ...b, key, partition, offset: push(key, b.value, partition) });
  });
  return { messages, placed };
}

const jobs: TestJob[] = [];
afterAll(() => jobs.forEach((j) => j.cleanup()));

async function runCase(
  kafka: Kafka,
  topic: string,
  format: DebeziumSourceOptions['format'],
  bad: readonly BadMessage[],
  encode: (r: WorkloadRecord) => Buffer | null,
): Promise<void> {
  const valid = [...generateWorkload(WORKLOAD)];
  const { messages, placed } = interleave(valid, bad, encode);
  expect(placed).toHaveLength(bad.length);
  await createTopic(kafka, topic, PARTITIONS);
  await produce(kafka, topic, messages);

  const job = testJob(uniqueName('dlq-job'));
  jobs.push(job);
  let changeEvents = 0;
  const source = debeziumSource<OrderRow>({
    topics: [topic],
    groupId: uniqueName('dlq-group'),
    ...(format === undefined ? {} : { format }),
    bounded: 'latest',
  });
  // No crash: the job finishes on its first attempt.
  const { result, changes } = await runProjection(job, source, () => (changeEvents += 1));

  // Nothing lost: every valid change event went through, and the table is the oracle's.
  expect(changeEvents).toBe(valid.filter((r) => r.event !== null).length);
  expect(finalTable(changes)).toEqual(projectionOracle(valid));

  // Each bad message is in the dead-letter topic, untouched, with its origin and reason.
  const letters = await readTopic(kafka, `${topic}.dlq`, bad.length);
  expect(letters).toHaveLength(bad.length);
  const header = (headers: Record<string, unknown> | undefined, name: string): string | undefined => {
    const value = headers?.[name];
    return value === undefined ? undefined : String(value);
  };
  for (const expected of placed) {
    const letter = letters.find(
      (l) =>
        header(l.message.headers, DLQ_HEADERS.partition) === String(expected.partition) &&
        header(l.message.headers, DLQ_HEADERS.offset) === expected.offset,
    );
    expect(letter, `dead letter for '${expected.name}' at ${expected.partition}/${expected.offset}`).toBeDefined();
    const headers = letter?.message.headers;
    expect(header(headers, DLQ_HEADERS.topic)).toBe(topic);
    expect(expected.kinds, expected.name).toContain(header(headers, DLQ_HEADERS.errorKind));
    expect(header(headers, DLQ_HEADERS.reason)?.length ?? 0, `reason for '${expected.name}'`).toBeGreaterThan(10);
    expect(letter?.message.value?.equals(expected.value), `original bytes of '${expected.name}'`).toBe(true);
    expect(letter?.message.key?.equals(expected.key)).toBe(true);
  }

  // The counter rose by exactly the number of bad messages, under the decode stage (and their reasons).
  const registry = result.metrics.registry;
  expect(await metricTotal(registry, 'cdcflow_dead_letters_total')).toBe(bad.length);
  const series = (await registry.getSingleMetric('cdcflow_dead_letters_total')?.get())?.values ?? [];
  expect(series.filter((s) => s.value > 0).every((s) => s.labels['stage'] === 'decode')).toBe(true);
}

describe('Debezium source: dead letters', () => {
  const kafka = testKafka(uniqueName('dlq-test'));

  it('files garbage, non-JSON, op-less and unknown-op messages of a JSON topic and processes every valid event', async () => {
    const topic = uniqueName('dlq-json');
    await runCase(kafka, topic, { format: 'json' }, jsonBadMessages(), (r) => r.value);
  });

  it('files wrong magic bytes, unknown schema ids, bad bodies and unknown ops of an Avro topic and processes every valid event', async () => {
    const registryUrl = testEndpoints().schemaRegistryUrl;
    const topic = uniqueName('dlq-avro');
    const encoder = await createOrdersAvroEncoder(new SchemaRegistry({ host: registryUrl }), {
      subject: `${topic}-value`,
    });
    const bad = avroBadMessages(encoder);
    await runCase(kafka, topic, { format: 'avro', registryUrl }, bad, (r) =>
      r.event === null ? null : encoder.encode(r.event),
    );
  });
});
