/** The decimal settings reach every decoding path: the decode pool's workers and Avro's logical type. */
import avro from 'avsc';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeWireFrame } from '../../../../../operators/sources/kafka/confluent-wire.ts';
import { avroDecimalLogicalTypes } from '../../../../../operators/sources/kafka/avro-decimal.ts';
import { createDecoder } from '../../../../../operators/sources/kafka/message-decoder.ts';
import type { Decoded, JsonRow } from '../../../../../operators/sources/kafka/raw-message.ts';
import { startFakeRegistry, type FakeRegistry } from '../../../../../scripts/workload/fake-schema-registry.ts';
import { SOURCE_VALUES, fixtureMessages } from '../../../../fixtures/debezium/fixtures.ts';
import { SOURCE, message } from './messages.ts';

function afters(decoded: Decoded<JsonRow>[]): unknown[] {
  return decoded.flatMap((d) => {
    if (d.kind !== 'change') throw new Error(`expected a change, got ${JSON.stringify(d)}`);
    return d.event.op === 't' ? [] : [{ ...d.event.after }];
  });
}

describe('decimal decoding paths', () => {
  it('decode-pool workers apply the source decimal settings', async () => {
    const messages = fixtureMessages('precise-no-schemas');
    const decoder = createDecoder<JsonRow>(
      { format: 'json' },
      { workers: 1, decimals: { columns: { amount: 2, big: 0 } } },
    );
    try {
      // 8 messages, under the pool's default minimum batch: repeat them so the batch goes to a worker.
      const batch = Array.from({ length: 8 }, () => messages).flat();
      const decoded = await decoder.decodeBatch(batch);
      expect(afters(decoded)).toEqual(Array.from({ length: 8 }, () => SOURCE_VALUES).flat());
    } finally {
      await decoder.close();
    }
  });

  describe("Avro: the decimal logical type (what Confluent's AvroConverter writes for Debezium precise)", () => {
    let registry: FakeRegistry;
    beforeAll(async () => {
      registry = await startFakeRegistry();
    });
    afterAll(async () => {
      await registry.close();
    });

    const decimal = (scale: number, precision: number) => ({
      type: 'bytes',
      scale,
      precision,
      'connect.version': 1,
      'connect.parameters': { scale: String(scale), 'connect.decimal.precision': String(precision) },
      'connect.name': 'org.apache.kafka.connect.data.Decimal',
      logicalType: 'decimal',
    });
    const row = {
      type: 'record',
      name: 'Value',
      namespace: 'dv.public.amounts',
      fields: [
        { name: 'id', type: 'int' },
        { name: 'amount', type: ['null', decimal(2, 12)], default: null },
        {
          name: 'ratio',
          type: [
            'null',
            {
              type: 'record',
              name: 'VariableScaleDecimal',
              namespace: 'io.debezium.data',
              fields: [
                { name: 'scale', type: 'int' },
                { name: 'value', type: 'bytes' },
              ],
              'connect.name': 'io.debezium.data.VariableScaleDecimal',
            },
          ],
          default: null,
        },
      ],
    };
    const envelopeSchema = {
      type: 'record',
      name: 'Envelope',
      namespace: 'dv.public.amounts',
      fields: [
        { name: 'before', type: ['null', row], default: null },
        { name: 'after', type: ['null', 'Value'], default: null },
        {
          name: 'source',
          type: {
            type: 'record',
            name: 'Source',
            fields: ['db', 'schema', 'table']
              .map((name) => ({ name, type: 'string' }))
              .concat([
                { name: 'lsn', type: 'long' },
                { name: 'ts_ms', type: 'long' },
              ] as never[]),
          },
        },
        { name: 'op', type: 'string' },
        { name: 'ts_ms', type: ['null', 'long'], default: null },
      ],
    };

    it('decodes Avro decimals and VariableScaleDecimal records to exact text', async () => {
      const client = new SchemaRegistry({ host: registry.url });
      const { id } = await client.register({ type: 'AVRO' as never, schema: JSON.stringify(envelopeSchema) } as never, {
        subject: 'dv.public.amounts-value',
      });
      const type = avro.Type.forSchema(envelopeSchema as avro.Schema, { logicalTypes: avroDecimalLogicalTypes });
      const unscaled = Buffer.from([0xff, 0x5f]); // -161 → -0.000161 at scale 6
      const encode = (amount: string | null) =>
        writeWireFrame(
          id,
          type.toBuffer({
            before: null,
            after: { id: 1, amount, ratio: { scale: 6, value: unscaled } },
            source: { db: SOURCE.db, schema: 'public', table: 'amounts', lsn: 1, ts_ms: 2 },
            op: 'c',
            ts_ms: 3,
          }),
        );
      const decoder = createDecoder<JsonRow>({ format: 'avro', registryUrl: registry.url });
      const decoded = await decoder.decodeBatch(
        ['-26588.24', '100.00', '0.07', null].map((a) => message(encode(a), { id: 1 })),
      );
      expect(afters(decoded)).toEqual(
        ['-26588.24', '100.00', '0.07', null].map((amount) => ({ id: 1, amount, ratio: '-0.000161' })),
      );
    });
  });
});
