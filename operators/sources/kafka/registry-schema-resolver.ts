import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { HEADER_BYTES, readWireHeader } from './confluent-wire.ts';
import { SchemaBodyError, SchemaNotFoundError, classifyRegistryError } from './schema-resolver.ts';
import type { SchemaResolver } from './schema-resolver.ts';

/** The part of an avsc `Type` we use. */
interface BodyDecoder {
  fromBuffer(body: Buffer): unknown;
}

/** The part of `SchemaRegistry` we use, so tests and other clients can stand in. */
export type SchemaSource = Pick<SchemaRegistry, 'getSchema'>;

/**
 * {@link SchemaResolver} over `@kafkajs/confluent-schema-registry`. Writer schemas are cached by id
 * here as well, so the steady state is one map lookup and one avsc `fromBuffer` per message.
 */
export class RegistrySchemaResolver implements SchemaResolver {
  readonly #registry: SchemaSource;
  readonly #types = new Map<number, BodyDecoder>();

  constructor(registry: SchemaSource) {
    this.#registry = registry;
  }

  async decode(frame: Buffer): Promise<unknown> {
    const header = readWireHeader(frame);
    if (!header.ok) throw new SchemaBodyError(header.reason, { truncated: header.kind === 'truncated' });
    const type = this.#types.get(header.schemaId) ?? (await this.#fetch(header.schemaId));
    try {
      return type.fromBuffer(frame.subarray(HEADER_BYTES));
    } catch (error) {
      const message = (error as Error).message;
      const truncated = /truncated/i.test(message);
      throw new SchemaBodyError(`Avro body does not decode with schema ${header.schemaId}: ${message}`, {
        truncated,
        cause: error,
      });
    }
  }

  async #fetch(schemaId: number): Promise<BodyDecoder> {
    let schema: unknown;
    try {
      schema = await this.#registry.getSchema(schemaId);
    } catch (error) {
      throw classifyRegistryError(schemaId, error);
    }
    if (
      typeof schema !== 'object' ||
      schema === null ||
      !('fromBuffer' in schema) ||
      typeof schema.fromBuffer !== 'function'
    ) {
      throw new SchemaNotFoundError(schemaId, { cause: new Error('registry returned a schema that is not Avro') });
    }
    const type = schema as BodyDecoder;
    this.#types.set(schemaId, type);
    return type;
  }
}
