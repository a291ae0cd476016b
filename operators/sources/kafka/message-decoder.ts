import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { ConfluentAvroDecoder } from './confluent-avro.ts';
import { decodeDebeziumJson } from './debezium-json.ts';
import type { Decoded, RawMessage } from './raw-message.ts';
import { RegistrySchemaResolver } from './registry-schema-resolver.ts';

/** How the topic's values are encoded. */
export type DecoderChoice =
  | { readonly format: 'json' }
  | { readonly format: 'avro'; /** @default process.env.SCHEMA_REGISTRY_URL */ readonly registryUrl?: string };

export interface MessageDecoder<Row> {
  decodeBatch(messages: readonly RawMessage[]): Promise<Decoded<Row>[]>;
}

export function createDecoder<Row>(choice: DecoderChoice): MessageDecoder<Row> {
  if (choice.format === 'json') {
    return { decodeBatch: (messages) => Promise.resolve(messages.map((m) => decodeDebeziumJson<Row>(m))) };
  }
  const host = choice.registryUrl ?? process.env['SCHEMA_REGISTRY_URL'];
  if (host === undefined) throw new Error("Avro decoding needs the schema registry: pass format: { format: 'avro', registryUrl } or set SCHEMA_REGISTRY_URL");
  const decoder = new ConfluentAvroDecoder<Row>(new RegistrySchemaResolver(new SchemaRegistry({ host })));
  return { decodeBatch: (messages) => decoder.decodeBatch(messages) };
}
