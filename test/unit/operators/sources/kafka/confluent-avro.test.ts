import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfluentAvroDecoder } from '../../../../../operators/sources/kafka/confluent-avro.ts';
import { writeWireFrame } from '../../../../../operators/sources/kafka/confluent-wire.ts';
import type { Decoded, JsonRow } from '../../../../../operators/sources/kafka/raw-message.ts';
import { RegistrySchemaResolver } from '../../../../../operators/sources/kafka/registry-schema-resolver.ts';
import { SchemaRegistryUnavailableError } from '../../../../../operators/sources/kafka/schema-resolver.ts';
import type { SchemaResolver } from '../../../../../operators/sources/kafka/schema-resolver.ts';
import { CdcflowError } from '../../../../../state/errors.ts';
import { createOrdersAvroEncoder } from '../../../../../scripts/workload/avro-encoder.ts';
import { generateWorkload } from '../../../../../scripts/workload/generator.ts';
import { ORDERS_KEY_SCHEMA, ORDERS_VALUE_SCHEMA_V2 } from '../../../../../scripts/workload/orders-avro-schema.ts';
import { startFakeRegistry } from '../../../../../scripts/workload/fake-schema-registry.ts';
import type { FakeRegistry } from '../../../../../scripts/workload/fake-schema-registry.ts';
import { envelope, message } from './messages.ts';

/** Resolves schema id 1 to "the body is JSON" so decoder logic is tested without Avro. */
const fakeResolver: SchemaResolver = {
  decode: (frame) => {
    const id = frame.readInt32BE(1);
    if (id === 404) return Promise.reject(Object.assign(new Error('Schema not found'), { status: 404 }));
    if (id === 503) return Promise.reject(Object.assign(new Error('Service Unavailable'), { status: 503 }));
    return Promise.resolve(JSON.parse(frame.subarray(5).toString()));
  },
};

const frame = (id: number, value: unknown): Buffer => writeWireFrame(id, Buffer.from(JSON.stringify(value)));

function kindOf(decoded: Decoded<JsonRow>): string {
  return decoded.kind === 'dead-letter' ? `dead-letter:${decoded.letter.errorKind}` : decoded.kind;
}

describe('ConfluentAvroDecoder with a fake resolver', () => {
  const decoder = new ConfluentAvroDecoder(fakeResolver);

  it('normalises the decoded envelope exactly like JSON', async () => {
    const decoded = await decoder.decode(message(frame(1, envelope({ op: 'u', before: { id: 42 } }))));
    expect(decoded).toMatchObject({
      kind: 'change',
      event: { op: 'u', key: { id: 42 }, source: { lsn: 6_093_757_537 } },
    });
  });

  it('dead-letters a wrong magic byte, a short frame, an unknown schema id and a bad envelope', async () => {
    const json = Buffer.from(JSON.stringify(envelope()));
    const letters = await decoder.decodeBatch([
      message(json),
      message(Buffer.from([0, 0, 1])),
      message(frame(404, envelope())),
      message(frame(1, envelope({ op: 'x' }))),
      message(frame(1, { ts_ms: 1 })),
      message(null),
    ]);
    expect(letters.map(kindOf)).toEqual([
      'dead-letter:bad-magic-byte',
      'dead-letter:truncated',
      'dead-letter:unknown-schema',
      'dead-letter:unknown-op',
      'heartbeat',
      'tombstone',
    ]);
    const first = letters[0];
    expect(first?.kind === 'dead-letter' && first.letter.reason).toMatch(/magic byte is 0x7b/);
  });

  it('throws a retriable external error when the registry is unavailable', async () => {
    const failure = await decoder.decode(message(frame(503, envelope()))).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(CdcflowError);
    expect(failure).toMatchObject({ retriable: true, domain: 'external' });
  });
});

describe('ConfluentAvroDecoder over the real registry client', () => {
  let registry: FakeRegistry;
  let client: SchemaRegistry;

  beforeAll(async () => {
    registry = await startFakeRegistry();
    client = new SchemaRegistry({ host: registry.url, retry: { retries: 0 } });
  });
  afterAll(() => registry.close());

  it('round-trips the workload through the Avro encoder (v1 and v2 schemas)', async () => {
    const v1 = await createOrdersAvroEncoder(client);
    const v2 = await createOrdersAvroEncoder(client, { schema: ORDERS_VALUE_SCHEMA_V2 });
    expect(v2.schemaId).not.toBe(v1.schemaId);
    // A fresh client, so schemas are fetched over HTTP as a consumer would.
    const decoder = new ConfluentAvroDecoder(new RegistrySchemaResolver(new SchemaRegistry({ host: registry.url })));
    for (const record of generateWorkload({ keys: 20, events: 120 })) {
      const encoder = record.seq % 2 === 0 ? v1 : v2;
      const value = record.event === null ? null : encoder.encode(record.event);
      const decoded = await decoder.decode({ ...message(null, record.key), value });
      if (record.event === null) {
        expect(decoded.kind).toBe('tombstone');
        continue;
      }
      if (decoded.kind !== 'change') throw new Error(`record ${record.seq}: ${JSON.stringify(decoded)}`);
      expect(decoded.event.source.lsn).toBe(record.event.source.lsn);
      expect(decoded.event.source.tsMs).toBe(record.event.source.ts_ms);
      expect({ ...decoded.event.after }).toMatchObject(record.event.after ?? {});
      expect(decoded.event.key).toEqual({ id: record.id });
    }
  });

  it('decodes Avro keys', async () => {
    const { id } = await client.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(ORDERS_KEY_SCHEMA) },
      { subject: 'orders-key' },
    );
    const key = await client.encode(id, { id: 77 });
    const value = (await createOrdersAvroEncoder(client)).encode(
      [...generateWorkload({ keys: 1, events: 1 })][0]?.event ?? never(),
    );
    const decoded = await new ConfluentAvroDecoder(new RegistrySchemaResolver(client)).decode({
      ...message(null, key),
      value,
    });
    expect(decoded.kind === 'change' && { ...decoded.event.key }).toEqual({ id: 77 });
  });

  it('dead-letters an unknown schema id and a truncated or corrupt body', async () => {
    const encoder = await createOrdersAvroEncoder(client);
    const good = encoder.encode([...generateWorkload({ keys: 1, events: 1 })][0]?.event ?? never());
    const corrupt = Buffer.from(good);
    corrupt.fill(0xff, 5, 12);
    const decoder = new ConfluentAvroDecoder(new RegistrySchemaResolver(client));
    const out = await decoder.decodeBatch([
      message(writeWireFrame(9_999, good.subarray(5))),
      message(good.subarray(0, good.length - 40)),
      message(corrupt),
      message(good),
    ]);
    expect(out.map(kindOf)).toEqual([
      'dead-letter:unknown-schema',
      'dead-letter:truncated',
      'dead-letter:undecodable',
      'change',
    ]);
  });

  it('rejects with a retriable error on HTTP 503, and does not dead-letter', async () => {
    registry.failWith.set(4242, 503);
    const decoder = new ConfluentAvroDecoder(new RegistrySchemaResolver(client));
    const failure = await decoder.decode(message(writeWireFrame(4242, Buffer.alloc(3)))).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(SchemaRegistryUnavailableError);
    expect(failure).toMatchObject({ retriable: true, domain: 'external' });
  });

  it('rejects with a retriable error when the registry is unreachable', async () => {
    const closed = await startFakeRegistry();
    await closed.close();
    const decoder = new ConfluentAvroDecoder(
      new RegistrySchemaResolver(new SchemaRegistry({ host: closed.url, retry: { retries: 0 } })),
    );
    const failure = await decoder.decode(message(writeWireFrame(1, Buffer.alloc(3)))).catch((e: unknown) => e);
    expect(failure).toMatchObject({ retriable: true, domain: 'external' });
  });
});

function never(): never {
  throw new Error('the generator yielded nothing');
}
