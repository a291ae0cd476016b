import { CdcflowError } from '../../../state/errors.ts';

/**
 * Turns a Confluent wire-format frame into a value. Ours, so tests can fake it and a faster
 * registry client can replace `@kafkajs/confluent-schema-registry` without touching decoders.
 *
 * Implementations signal outcomes by error type: {@link SchemaNotFoundError} and
 * {@link SchemaBodyError} mean "this message is bad" (the decoder dead-letters it); anything else,
 * typically a retriable {@link SchemaRegistryUnavailableError}, is thrown on to the caller.
 */
export interface SchemaResolver {
  decode(frame: Buffer): Promise<unknown>;
}

/** Thrown by a resolver when the registry does not know a frame's schema id (HTTP 404). */
export class SchemaNotFoundError extends CdcflowError {
  readonly schemaId: number;
  constructor(schemaId: number, options: { cause?: unknown } = {}) {
    super(
      `schema id ${schemaId} is unknown to the schema registry: is the job pointed at the registry the producer used?`,
      {
        domain: 'external',
        ...options,
      },
    );
    this.schemaId = schemaId;
  }
}

/** Thrown by a resolver when the body does not decode with its writer schema. */
export class SchemaBodyError extends CdcflowError {
  /** True when the body ended early (a cut-off message) rather than being garbage. */
  readonly truncated: boolean;
  constructor(message: string, options: { truncated: boolean; cause?: unknown }) {
    super(message, { domain: 'external', cause: options.cause });
    this.truncated = options.truncated;
  }
}

/**
 * Thrown when the registry cannot answer now (5xx, timeout, connection refused). Retriable: the
 * message is fine and decoding it again later will work, so it must not be dead-lettered.
 */
export class SchemaRegistryUnavailableError extends CdcflowError {
  constructor(message: string, options: { cause?: unknown; retriable?: boolean } = {}) {
    super(message, { domain: 'external', retriable: options.retriable ?? true, cause: options.cause });
  }
}

function statusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('status' in error)) return undefined;
  return typeof error.status === 'number' ? error.status : undefined;
}

/** 404 → the id is unknown (dead letter); 401/403 → credentials (fix and restart); else retry. */
export function classifyRegistryError(schemaId: number, error: unknown): Error {
  const status = statusOf(error);
  if (status === 404) return new SchemaNotFoundError(schemaId, { cause: error });
  const detail = error instanceof Error ? error.message : String(error);
  if (status === 401 || status === 403) {
    return new SchemaRegistryUnavailableError(
      `schema registry refused access (HTTP ${status}) fetching schema ${schemaId}: check the registry credentials (${detail})`,
      { cause: error, retriable: false },
    );
  }
  return new SchemaRegistryUnavailableError(
    `schema registry unavailable fetching schema ${schemaId}${status === undefined ? '' : ` (HTTP ${status})`}: ${detail}`,
    { cause: error },
  );
}
