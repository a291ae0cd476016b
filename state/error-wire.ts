/**
 * Errors across a thread boundary (subtask worker → main thread): structured clone keeps only
 * `message` and `stack` of an Error, so the class, `domain`, `retriable`, `where`, the fields a
 * class adds (`checkpointId`, `subtaskIndex`, …) and the cause chain are sent as plain data and a
 * typed error is rebuilt on the other side: same class (when registered), same fields, so
 * `instanceof` and `retriable` decide there as they would have here.
 */
import { CdcflowError, type ErrorDomain, type ErrorLocation } from './errors.ts';
import { classifyError } from './error-classification.ts';

export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
  /** Set for CdcflowErrors, and for other errors as `classifyError` saw them before the crossing. */
  readonly domain: ErrorDomain;
  readonly retriable: boolean;
  readonly cdcflow: boolean;
  readonly where: ErrorLocation | undefined;
  /** Own enumerable fields a class adds, as JSON-safe data. */
  readonly fields: Readonly<Record<string, unknown>>;
  readonly cause: WireError | undefined;
}

type ErrorClass = abstract new (...args: never[]) => Error;

const registry = new Map<string, ErrorClass>([['CdcflowError', CdcflowError]]);

/** Makes `classes` rebuildable by name on this thread (runtime/error-classes.ts registers cdcflow's). */
export function registerErrorClasses(...classes: ErrorClass[]): void {
  for (const c of classes) registry.set(c.name, c);
}

const STANDARD = new Set(['name', 'message', 'stack', 'domain', 'retriable', 'where', 'cause']);

export function toWireError(error: unknown, depth = 0): WireError {
  const { domain, retriable } = classifyError(error);
  if (!(error instanceof Error)) {
    return {
      name: 'Error',
      message: String(error),
      stack: undefined,
      domain,
      retriable,
      cdcflow: false,
      where: undefined,
      fields: {},
      cause: undefined,
    };
  }
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(error)) if (!STANDARD.has(k)) fields[k] = jsonSafe(v);
  return {
    name: error.name,
    message: error.message,
    stack: error.stack,
    domain,
    retriable,
    cdcflow: error instanceof CdcflowError,
    where: error instanceof CdcflowError ? (jsonSafe(error.where) as ErrorLocation | undefined) : undefined,
    fields,
    cause: depth < 8 && error.cause !== undefined ? toWireError(error.cause, depth + 1) : undefined,
  };
}

/** The error `wire` describes, as an instance of its class when that class is registered here (else a CdcflowError/Error of the same name). */
export function fromWireError(wire: WireError): Error {
  const known = registry.get(wire.name);
  const prototype = (known?.prototype ?? (wire.cdcflow ? CdcflowError.prototype : Error.prototype)) as object;
  // Constructors take class-specific arguments (and some build their message); the fields are restored as sent instead.
  const error = Object.create(prototype) as Error & Record<string, unknown>;
  const define = (key: string, value: unknown) =>
    Object.defineProperty(error, key, {
      value,
      writable: true,
      configurable: true,
      enumerable: key !== 'message' && key !== 'stack' && key !== 'cause',
    });
  define('message', wire.message);
  define('stack', wire.stack);
  if (known === undefined || error.name !== wire.name) define('name', wire.name);
  for (const [k, v] of Object.entries(wire.fields)) define(k, v);
  if (wire.cdcflow) {
    define('domain', wire.domain);
    define('retriable', wire.retriable);
    define('where', wire.where);
  } else if (wire.fields['retriable'] === undefined) {
    // Keep what the sending side classified (a socket error's `code` is in fields, but not every hint survives).
    define('retriable', wire.retriable);
  }
  if (wire.cause !== undefined) define('cause', fromWireError(wire.cause));
  return error;
}

function jsonSafe(value: unknown): unknown {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as unknown;
  } catch {
    return String(value);
  }
}
