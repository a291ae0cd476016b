import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { avroDecimalLogicalTypes } from './avro-decimal.ts';
import { ConfluentAvroDecoder } from './confluent-avro.ts';
import { DecodePool } from './decode-pool.ts';
import { DecimalColumns, type DebeziumDecimalOptions } from './debezium-decimals.ts';
import { decodeDebeziumJson } from './debezium-json.ts';
import type { Decoded, RawMessage } from './raw-message.ts';
import { RegistrySchemaResolver } from './registry-schema-resolver.ts';

/** How the topic's values are encoded. */
export type DecoderChoice =
  | { readonly format: 'json' }
  | { readonly format: 'avro'; /** @default process.env.SCHEMA_REGISTRY_URL */ readonly registryUrl?: string };

export interface DecoderOptions {
  /**
   * Worker threads decoding JSON batches; 0 decodes on the calling thread. Workers start on first
   * use, and only as many as there are batches in flight. Avro is always decoded on the calling
   * thread (its schemas come from the registry client).
   *
   * Off by default: the decoded objects must still be built on the calling thread (one JSON.parse
   * of the worker's result costs ~70% of decoding there), and the whole round trip costs more CPU
   * in total than it saves. `npm run bench -- upsert` measures both; see decode-pool.ts.
   * @default 0
   */
  readonly workers?: number | undefined;
  /** NUMERIC/DECIMAL columns when the JSON converter has schemas disabled (see debezium-decimals.ts). */
  readonly decimals?: DebeziumDecimalOptions | undefined;
}

export interface MessageDecoder<Row> {
  /** Decodes a batch; results of successive calls resolve in call order. */
  decodeBatch(messages: readonly RawMessage[]): Promise<Decoded<Row>[]>;
  /**
   * Decoding on the calling thread with nothing to wait for: the source then keeps fetched
   * batches raw and decodes each when the job takes it, so decoded events die young instead of
   * aging (and being promoted by the GC) in a full fetch buffer. @default false
   */
  readonly decodesWhenTaken?: boolean;
  /** Releases worker threads; batches still in flight reject. */
  close(): Promise<void>;
}

export function createDecoder<Row>(choice: DecoderChoice, options: DecoderOptions = {}): MessageDecoder<Row> {
  if (choice.format === 'json') {
    const workers = options.workers ?? 0;
    if (!Number.isInteger(workers) || workers < 0)
      throw new RangeError(`decode workers must be an integer >= 0, got ${workers}`);
    const decimals = options.decimals;
    if (workers > 0) return new DecodePool<Row>({ workers, ...(decimals === undefined ? {} : { decimals }) });
    const json = { decimals: new DecimalColumns(decimals) };
    return {
      decodeBatch: (messages) => Promise.resolve(messages.map((m) => decodeDebeziumJson<Row>(m, json))),
      decodesWhenTaken: true,
      close: () => Promise.resolve(),
    };
  }
  const host = choice.registryUrl ?? process.env['SCHEMA_REGISTRY_URL'];
  if (host === undefined)
    throw new Error(
      "Avro decoding needs the schema registry: pass format: { format: 'avro', registryUrl } or set SCHEMA_REGISTRY_URL",
    );
  // Avro carries the scale in the schema (the `decimal` logical type): decoded by avsc itself.
  const registry = new SchemaRegistry({ host }, { [SchemaType.AVRO]: { logicalTypes: avroDecimalLogicalTypes } });
  const decoder = new ConfluentAvroDecoder<Row>(new RegistrySchemaResolver(registry));
  return { decodeBatch: (messages) => decoder.decodeBatch(messages), close: () => Promise.resolve() };
}
