import { CdcflowError } from '../../../state/errors.ts';
import { readWireHeader } from './confluent-wire.ts';
import { deadLetter } from './dead-letter.ts';
import type { DeadLetterKind } from './dead-letter.ts';
import { DEFAULT_HEARTBEAT_TOPIC, decodeEnvelopeValue, decodeJsonKey } from './debezium-json.ts';
import type { DebeziumJsonOptions } from './debezium-json.ts';
import { originOf } from './raw-message.ts';
import type { Decoded, DecodedKey, JsonRow, RawMessage } from './raw-message.ts';
import { SchemaBodyError, SchemaNotFoundError, classifyRegistryError } from './schema-resolver.ts';
import type { SchemaResolver } from './schema-resolver.ts';

/** Options of {@link ConfluentAvroDecoder}; the heartbeat topic rule is shared with JSON. */
export type ConfluentAvroOptions = DebeziumJsonOptions;

type Step<T> = { ok: true; value: T } | { ok: false; kind: DeadLetterKind; reason: string };

/**
 * Decodes Debezium change events written with Confluent's Avro converter (wire format: magic byte,
 * schema id, Avro body). Bad messages become dead letters; a registry that cannot answer right now
 * makes `decode` reject with a retriable `CdcflowError` (domain `external`): the message is fine,
 * so the caller must retry rather than dead-letter it.
 *
 * Keys are decoded as Avro when they start with the magic byte and as JSON otherwise (`{` can
 * never be a magic byte), so a JSON-key/Avro-value connector works too.
 */
export class ConfluentAvroDecoder<Row = JsonRow> {
  readonly #resolver: SchemaResolver;
  readonly #heartbeatTopic: RegExp;

  constructor(resolver: SchemaResolver, options: ConfluentAvroOptions = {}) {
    this.#resolver = resolver;
    this.#heartbeatTopic = options.heartbeatTopic ?? DEFAULT_HEARTBEAT_TOPIC;
  }

  async decode(message: RawMessage): Promise<Decoded<Row>> {
    if (this.#heartbeatTopic.test(message.topic)) return this.#heartbeat(message);
    const key = await this.#key(message.key);
    if (!key.ok) return { kind: 'dead-letter', letter: deadLetter(message, key.kind, `key: ${key.reason}`) };
    if (message.value === null) return { kind: 'tombstone', key: key.value, origin: originOf(message) };
    const value = await this.#frame(message.value);
    if (!value.ok) return { kind: 'dead-letter', letter: deadLetter(message, value.kind, value.reason) };
    return decodeEnvelopeValue<Row>(message, key.value, value.value);
  }

  /** Decodes in order; rejects (retriably) if the registry is unavailable for any of them. */
  async decodeBatch(messages: readonly RawMessage[]): Promise<Decoded<Row>[]> {
    const out: Decoded<Row>[] = [];
    for (const message of messages) out.push(await this.decode(message));
    return out;
  }

  async #heartbeat(message: RawMessage): Promise<Decoded<Row>> {
    const value = message.value === null ? undefined : await this.#frame(message.value).catch(() => undefined);
    const decoded = value?.ok === true ? value.value : undefined;
    const raw = typeof decoded === 'object' && decoded !== null && 'ts_ms' in decoded ? decoded.ts_ms : undefined;
    return { kind: 'heartbeat', tsMs: typeof raw === 'number' ? raw : null, origin: originOf(message) };
  }

  async #key(bytes: Buffer | null): Promise<Step<DecodedKey>> {
    if (bytes === null || bytes.length === 0 || bytes[0] !== 0) {
      const json = decodeJsonKey(bytes);
      return json.ok ? { ok: true, value: json.key } : { ok: false, kind: 'undecodable', reason: json.reason };
    }
    const frame = await this.#frame(bytes);
    if (!frame.ok) return frame;
    const key = frame.value;
    if (key === null || (typeof key === 'object' && !Array.isArray(key))) {
      return { ok: true, value: key as DecodedKey };
    }
    return { ok: false, kind: 'malformed', reason: 'Avro key is not a record' };
  }

  async #frame(frame: Buffer): Promise<Step<unknown>> {
    const header = readWireHeader(frame);
    if (!header.ok) return header;
    try {
      return { ok: true, value: await this.#resolver.decode(frame) };
    } catch (error) {
      return classifyResolverError(header.schemaId, error);
    }
  }
}

/** Message faults become dead letters; everything else propagates (retriable if transient). */
function classifyResolverError(schemaId: number, error: unknown): Step<never> {
  const classified = error instanceof CdcflowError ? error : classifyRegistryError(schemaId, error);
  if (classified instanceof SchemaNotFoundError) {
    return { ok: false, kind: 'unknown-schema', reason: classified.message };
  }
  if (classified instanceof SchemaBodyError) {
    return { ok: false, kind: classified.truncated ? 'truncated' : 'undecodable', reason: classified.message };
  }
  throw classified;
}
