/**
 * Dead letters for records an operator or sink cannot handle (user code threw, state refused the
 * value, the sink's target refused the row). Such a failure is deterministic: retrying the same
 * record fails the same way, so a restart would only loop. The job's policy decides:
 * - `dead-letter` (default): the record goes to the job's dead-letter topic and processing goes on;
 * - `fail`: the job stops with a non-retriable error naming the record (no restart loop);
 * - `skip`: the record is dropped and counted (sinks only: for targets where a refusal is expected).
 *
 * Letters are queued while an operator processes a batch and written by the runtime before the
 * batch's results move on and before the operator's snapshot is acknowledged, so a checkpoint that
 * skips a record always has its letter written first (at-least-once: a replay may repeat a letter,
 * deduplicable by its `cdcflow.dlq.topic/partition/offset/stage` headers).
 */
import { CdcflowError } from '../state/errors.ts';
import type { ChangeEvent } from './change-event.ts';
import type { OperatorMetrics } from './operator.ts';
import { rememberDeadLetter } from './recent-dead-letters.ts';
import type { DeadLetter, DeadLetterKind } from './sources/kafka/dead-letter.ts';
import type { DeadLetterWriter } from './sources/kafka/dead-letter-writer.ts';
import type { MessageOrigin } from './sources/kafka/raw-message.ts';

export type RecordErrorPolicy = 'dead-letter' | 'fail' | 'skip';

/** One record an operator or sink gives up on. */
export interface RecordFailure {
  readonly kind: DeadLetterKind;
  readonly reason: string;
  /** The error behind it; its class goes into the letter. */
  readonly error?: unknown;
  /** The record's value as the operator received it (written as JSON, or as Debezium JSON for a change event). */
  readonly value: unknown;
  /** The record's key, if known. */
  readonly key?: unknown;
  /** Where it was read from; found on the value (change events, table changes) when not given. */
  readonly origin?: MessageOrigin;
  readonly timestampMs?: number;
}

/** What an operator sees: apply the policy to a failed record. */
export interface RecordDeadLetters {
  readonly policy: RecordErrorPolicy;
  /** Queues a letter (`dead-letter`), counts and drops (`skip`), or throws a `RecordFailedError` (`fail`). */
  reject(failure: RecordFailure, policy?: RecordErrorPolicy): void;
}

/** A record failed and the policy is `fail`: not retriable, the same record would fail again. */
export class RecordFailedError extends CdcflowError {
  constructor(
    message: string,
    readonly stage: string,
    readonly origin: MessageOrigin | undefined,
    cause?: unknown,
  ) {
    super(message, { domain: 'user', retriable: false, ...(cause === undefined ? {} : { cause }) });
  }
}

/** The reasons every operator's counter starts with (at zero), so alerts on them work from the start. */
export const OPERATOR_DEAD_LETTER_KINDS: readonly DeadLetterKind[] = ['user-code', 'unstorable', 'sink-refused'];

/** The runtime's implementation: letters queue per operator and are written by `flush`. */
export class QueuedRecordDeadLetters implements RecordDeadLetters {
  private queue: DeadLetter[] = [];

  constructor(
    readonly stage: string,
    readonly policy: RecordErrorPolicy,
    private readonly writer: DeadLetterWriter,
    private readonly metrics: OperatorMetrics,
    private readonly now: () => number = Date.now,
  ) {
    for (const reason of OPERATOR_DEAD_LETTER_KINDS) metrics.count('cdcflow_dead_letters_total', { stage, reason }, 0);
  }

  get pending(): number {
    return this.queue.length;
  }

  reject(failure: RecordFailure, policy: RecordErrorPolicy = this.policy): void {
    const origin = failure.origin ?? originOfValue(failure.value);
    if (policy === 'fail') {
      const where =
        origin === undefined ? 'a record' : `the record at ${origin.topic}/${origin.partition}@${origin.offset}`;
      const key = failure.key === undefined ? '' : ` (key ${abbreviated(failure.key)})`;
      throw new RecordFailedError(
        `${this.stage}: ${where}${key} failed (${failure.kind}): ${failure.reason}. Fix the cause, or let such records go to the dead-letter topic (record error policy 'dead-letter')`,
        this.stage,
        origin,
        failure.error,
      );
    }
    this.metrics.count('cdcflow_dead_letters_total', {
      stage: this.stage,
      reason: policy === 'skip' ? `${failure.kind}-skipped` : failure.kind,
    });
    if (policy === 'skip') return;
    const letter = letterOf(failure, this.stage, origin, this.now());
    rememberDeadLetter(letter);
    this.queue.push(letter);
  }

  /** Writes the queued letters (awaited by the runtime before a batch's results or a snapshot move on). */
  async flush(): Promise<void> {
    if (this.queue.length === 0) return;
    const letters = this.queue;
    this.queue = [];
    await this.writer.write(letters);
  }
}

function letterOf(failure: RecordFailure, stage: string, origin: MessageOrigin | undefined, now: number): DeadLetter {
  const error = failure.error;
  const errorClass =
    error instanceof Error ? error.constructor.name : error === undefined ? 'RecordFailure' : typeof error;
  return {
    topic: origin?.topic ?? '',
    partition: origin?.partition ?? -1,
    offset: origin?.offset ?? '',
    reason: failure.reason,
    errorKind: failure.kind,
    stage,
    errorClass,
    key: failure.key === undefined || failure.key === null ? keyOfValue(failure.value) : bytesOf(failure.key),
    value: valueBytes(failure.value),
    timestampMs: failure.timestampMs ?? now,
    deadLetteredAtMs: now,
  };
}

function isOrigin(value: unknown): value is MessageOrigin {
  if (typeof value !== 'object' || value === null) return false;
  const o = value as Record<string, unknown>;
  return typeof o['topic'] === 'string' && typeof o['partition'] === 'number' && typeof o['offset'] === 'string';
}

/** The source coordinates a change event or table change carries. */
export function originOfValue(value: unknown): MessageOrigin | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const origin = (value as { origin?: unknown }).origin;
  return isOrigin(origin) ? origin : undefined;
}

function isChangeEvent(value: unknown): value is ChangeEvent<unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v['op'] === 'string' &&
    typeof v['source'] === 'object' &&
    v['source'] !== null &&
    'before' in v &&
    'after' in v
  );
}

function keyOfValue(value: unknown): Buffer | null {
  if (isChangeEvent(value) && value.key !== null) return bytesOf(value.key);
  return null;
}

/**
 * A change event is written back as the Debezium JSON it was decoded from (so the replay tool can
 * re-inject it into the source topic); anything else as JSON (bigints as strings).
 */
function valueBytes(value: unknown): Buffer | null {
  if (value === undefined || value === null) return null;
  if (isChangeEvent(value)) {
    const { source } = value;
    const { tsMs, ...rest } = source as unknown as Record<string, unknown>;
    return bytesOf({
      before: value.before,
      after: value.after,
      source: { ...rest, ts_ms: tsMs },
      op: value.op,
      ts_ms: value.tsMs,
    });
  }
  return bytesOf(value);
}

function bytesOf(value: unknown): Buffer {
  try {
    const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    return Buffer.from(text ?? String(value), 'utf8');
  } catch (error) {
    // A value JSON cannot write (a cycle, nesting past the stack): the reason is what matters.
    return Buffer.from(`<unserialisable value: ${(error as Error).message}>`, 'utf8');
  }
}

function abbreviated(value: unknown): string {
  const text = bytesOf(value).toString('utf8');
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** Message of an unknown thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error);
}
