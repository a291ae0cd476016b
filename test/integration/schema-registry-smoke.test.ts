/**
 * The stack's schema registry (Apicurio's Confluent-compatible API) works with the client cdcflow
 * uses: registration, Confluent wire format, schema evolution, and failure on an unknown id.
 */
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { beforeAll, describe, expect, it } from 'vitest';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';

const orderV1 = {
  type: 'record' as const,
  name: 'Order',
  namespace: 'cdcflow.smoke',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'sku', type: 'string' },
  ],
};

// Backward compatible: a reader of v2 can read v1 records, the new field taking its default.
const orderV2 = {
  ...orderV1,
  fields: [...orderV1.fields, { name: 'note', type: ['null', 'string'], default: null }],
};

// Not backward compatible: a new field without a default.
const orderBroken = {
  ...orderV1,
  fields: [...orderV1.fields, { name: 'quantity', type: 'int' }],
};

const avro = (schema: object) => ({ type: SchemaType.AVRO as const, schema: JSON.stringify(schema) });

describe('schema registry (Confluent-compatible API)', () => {
  let registry: SchemaRegistry;
  const subject = `${uniqueName('smoke-order')}-value`;
  // Explicit, because the client compares it with the subject's config on every later register.
  const options = { subject, compatibility: COMPATIBILITY.BACKWARD };

  beforeAll(() => {
    registry = new SchemaRegistry({ host: testEndpoints().schemaRegistryUrl });
  });

  it('registers an Avro schema and round-trips a record in the Confluent wire format', async () => {
    const { id } = await registry.register(avro(orderV1), options);
    const record = { id: 42, sku: 'sku-1' };

    const encoded = await registry.encode(id, record);

    expect(encoded.readUInt8(0)).toBe(0);
    expect(encoded.readInt32BE(1)).toBe(id);
    expect({ ...(await registry.decode(encoded)) }).toEqual(record);
  });

  it('evolves the subject backward-compatibly and decodes records of both versions', async () => {
    const v1 = await registry.register(avro(orderV1), options);
    const v2 = await registry.register(avro(orderV2), options);
    expect(v2.id).not.toBe(v1.id);
    expect(await registry.getLatestSchemaId(subject)).toBe(v2.id);

    const oldRecord = await registry.encode(v1.id, { id: 1, sku: 'old' });
    const newRecord = await registry.encode(v2.id, { id: 2, sku: 'new', note: 'hello' });

    expect({ ...(await registry.decode(oldRecord)) }).toEqual({ id: 1, sku: 'old' });
    expect({ ...(await registry.decode(newRecord)) }).toEqual({ id: 2, sku: 'new', note: 'hello' });
    // A v2 reader sees v1 records with the default filled in.
    expect({ ...(await registry.decode(oldRecord, { [SchemaType.AVRO]: { readerSchema: orderV2 } })) }).toEqual({
      id: 1,
      sku: 'old',
      note: null,
    });
  });

  it('rejects a version that breaks backward compatibility', async () => {
    await registry.register(avro(orderV1), options);
    await expect(registry.register(avro(orderBroken), options)).rejects.toThrow(/incompatible/i);
  });

  it('fails to decode a buffer whose schema id the registry does not know', async () => {
    const unknownId = 2_000_000_000;
    const buffer = Buffer.alloc(7);
    buffer.writeUInt8(0, 0);
    buffer.writeInt32BE(unknownId, 1);
    buffer.writeUInt8(2, 5);
    buffer.writeUInt8(2, 6);

    // Confluent and Apicurio word it differently, but both name the id they could not find.
    await expect(registry.decode(buffer)).rejects.toThrow(String(unknownId));
  });
});
