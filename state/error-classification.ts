/**
 * One answer, everywhere, to "can trying again help, and whose move is it?" for any thrown value,
 * and where it happened. The restart strategy (runtime/environment.ts), the retry helper
 * (backoff.ts) and the sinks ask `classifyError`; the runtime adds the location with `locateError`.
 */
import {
  CdcflowError,
  UnclassifiedError,
  type ErrorDomain,
  type ErrorLocation,
  type RecordLocation,
} from './errors.ts';

export interface ErrorClass {
  readonly domain: ErrorDomain;
  readonly retriable: boolean;
}

/** Socket, DNS and disk errors: the environment, and it may recover. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ESOCKETTIMEDOUT',
  'EIO',
  'ENOSPC',
  'EMFILE',
  'ENFILE',
  'EBUSY',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);

/** JavaScript's own error classes: a bug in job code (or ours) that replays the same way every time. */
const PROGRAMMING_ERRORS = new Set([
  'TypeError',
  'RangeError',
  'ReferenceError',
  'SyntaxError',
  'EvalError',
  'URIError',
]);

/** SQLSTATE classes (Postgres): 08 connection, 40 rollback (serialization, deadlock), 53 resources, 55P03 lock not available, 57 operator intervention, 58 system. */
const TRANSIENT_SQLSTATE = /^(08|40|53|57|58)|^55P03$/;
/** 22 data exception, 23 integrity constraint, 42 syntax or access rule, 2B/2D/3F/44: the statement or the row is wrong. */
const DETERMINISTIC_SQLSTATE = /^(22|23|42|2B|2D|3F|44)/;

/** TLS handshake failures: a certificate or CA that does not match, until the configuration changes. */
const TLS_CONFIG_CODES =
  /^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|CERT_HAS_EXPIRED|ERR_TLS_CERT_ALTNAME_INVALID|ERR_SSL_)/;

const TRANSIENT_MESSAGE =
  /timed? ?out|timeout|socket hang up|connection (terminated|closed|reset|refused)|ECONN|not available|try again/i;

export function classifyError(error: unknown, depth = 0): ErrorClass {
  if (error instanceof CdcflowError) return { domain: error.domain, retriable: error.retriable };
  if (typeof error !== 'object' || error === null) return { domain: 'internal', retriable: true };
  const e = error as {
    name?: unknown;
    code?: unknown;
    retriable?: unknown;
    message?: unknown;
    cause?: unknown;
    severity?: unknown;
  };
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code !== undefined && TRANSIENT_CODES.has(code)) return { domain: 'external', retriable: true };
  if (code !== undefined && TLS_CONFIG_CODES.test(code)) return { domain: 'user', retriable: false };
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code) && typeof e.severity === 'string') {
    if (TRANSIENT_SQLSTATE.test(code)) return { domain: 'external', retriable: true };
    if (DETERMINISTIC_SQLSTATE.test(code)) return { domain: 'user', retriable: false };
  }
  if (typeof e.name === 'string' && e.name.startsWith('KafkaJS'))
    return classifyKafkaJs(e.name, e as { type?: unknown });
  // A few clients say it themselves.
  if (typeof e.retriable === 'boolean') return { domain: 'external', retriable: e.retriable };
  // `fetch failed` is a TypeError whose cause is the socket error.
  if (depth < 5 && e.cause !== undefined) {
    const cause = classifyError(e.cause, depth + 1);
    if (cause.domain === 'external') return cause;
  }
  if (typeof e.name === 'string' && PROGRAMMING_ERRORS.has(e.name)) return { domain: 'user', retriable: false };
  if (typeof e.message === 'string' && TRANSIENT_MESSAGE.test(e.message))
    return { domain: 'external', retriable: true };
  // Unknown: restarting from a checkpoint is the safe default, and the restart budget bounds it.
  return { domain: 'internal', retriable: true };
}

/** Authentication and authorization: the credentials or ACLs are wrong, and stay wrong until someone fixes them. */
const KAFKA_DENIED = /SASL_AUTHENTICATION_FAILED|AUTHORIZATION_FAILED|UNSUPPORTED_SASL_MECHANISM|ILLEGAL_SASL_STATE/;

/**
 * kafkajs's own `retriable` says whether *its* retrier should try again; a connection error it
 * gave up on (KafkaJSNumberOfRetriesExceeded, KafkaJSConnectionError) is non-retriable there but
 * exactly what a job restart after a broker outage is for. Only a refused login or a denied
 * request fails the job at once.
 */
function classifyKafkaJs(name: string, error: { type?: unknown }): ErrorClass {
  const type = typeof error.type === 'string' ? error.type : '';
  if (name === 'KafkaJSSASLAuthenticationError' || KAFKA_DENIED.test(type)) return { domain: 'user', retriable: false };
  return { domain: 'external', retriable: true };
}

/** Whether restarting the job (or retrying the call) can help. */
export function isRetriable(error: unknown): boolean {
  return classifyError(error).retriable;
}

/**
 * `error` as a CdcflowError that says where it happened. A deeper layer's location wins (the
 * sink that failed, not the source whose push reached it); fields it did not set are added.
 * Non-cdcflow errors are wrapped (message kept, original as `cause`).
 */
export function locateError(error: unknown, location: ErrorLocation): CdcflowError {
  const located = error instanceof CdcflowError ? error : wrap(error);
  const had = located.where ?? {};
  const record = had.record ?? location.record;
  located.where = {
    ...((had.operator ?? location.operator) === undefined ? {} : { operator: had.operator ?? location.operator }),
    ...((had.subtask ?? location.subtask) === undefined ? {} : { subtask: had.subtask ?? location.subtask }),
    ...(record === undefined ? {} : { record }),
  };
  return located;
}

function wrap(error: unknown): UnclassifiedError {
  const { domain, retriable } = classifyError(error);
  const message = error instanceof Error ? error.message : String(error);
  const originalName = error instanceof Error ? error.name : typeof error;
  const wrapped = new UnclassifiedError(message, { domain, retriable, cause: error, originalName });
  if (error instanceof Error && error.stack !== undefined) wrapped.stack = error.stack;
  return wrapped;
}

/** A record's location from what it carries: a change event's `origin` (topic/partition/offset) and its key. */
export function recordLocationOf(value: unknown, key?: unknown): RecordLocation | undefined {
  const origin = (value as { origin?: { topic?: unknown; partition?: unknown; offset?: unknown } } | null | undefined)
    ?.origin;
  const location: { topic?: string; partition?: number; offset?: string; key?: string } = {};
  if (typeof origin === 'object' && origin !== null) {
    if (typeof origin.topic === 'string') location.topic = origin.topic;
    if (typeof origin.partition === 'number') location.partition = origin.partition;
    if (typeof origin.offset === 'string' || typeof origin.offset === 'number') location.offset = String(origin.offset);
  }
  const k = key !== undefined ? key : (value as { key?: unknown } | null | undefined)?.key;
  if (k !== undefined) location.key = renderKey(k);
  return Object.keys(location).length === 0 ? undefined : location;
}

function renderKey(key: unknown): string {
  let text: string;
  try {
    text =
      typeof key === 'string'
        ? key
        : (JSON.stringify(key, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(key));
  } catch {
    text = String(key);
  }
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** `operator 'sink' subtask 1, record orders/2@17 key {"id":5}`; empty when nothing is known. */
export function describeLocation(location: ErrorLocation | undefined): string {
  if (location === undefined) return '';
  const parts: string[] = [];
  if (location.operator !== undefined) parts.push(`operator '${location.operator}'`);
  if (location.subtask !== undefined) parts.push(`subtask ${location.subtask}`);
  const r = location.record;
  if (r !== undefined) {
    const at = r.topic === undefined ? '' : ` ${r.topic}/${r.partition ?? '?'}@${r.offset ?? '?'}`;
    parts.push(`record${at}${r.key === undefined ? '' : ` key ${r.key}`}`);
  }
  return parts.join(', ');
}

/** One line for logs: `PostgresSinkError [user, not retriable] message (at operator 'x', subtask 0)`. */
export function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (!(error instanceof CdcflowError)) return message;
  const root = rootCdcflowError(error);
  const where = describeLocation(root.where ?? error.where);
  const name = root instanceof UnclassifiedError ? root.originalName : root.name;
  return `${name} [${root.domain}, ${root.retriable ? 'retriable' : 'not retriable'}] ${message}${where === '' ? '' : ` (at ${where})`}`;
}

/** Follows `cause` through wrappers that only add context (a subtask failure) to the error that says what went wrong. */
export function rootCdcflowError(error: CdcflowError): CdcflowError {
  let current = error;
  for (let i = 0; i < 5 && current.name === 'SubtaskFailedError' && current.cause instanceof CdcflowError; i++)
    current = current.cause;
  return current;
}
