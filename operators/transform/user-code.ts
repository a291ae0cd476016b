import { CdcflowError } from '../../state/errors.ts';
import type { StreamRecord } from '../operator.ts';
import { messageOf, type RecordDeadLetters } from '../record-dead-letters.ts';

/**
 * A user function threw on `record`. Deterministic (the same record throws again after a restart),
 * so it goes to the job's record-error policy instead of a restart loop. cdcflow's own errors
 * (`CdcflowError`: state I/O, a misused API, a record already failed under policy `fail`) are not
 * the record's fault and know whether they are retriable: they fail the job as before, as does
 * every error in runs without a dead-letter channel (unit tests).
 */
export function userCodeFailed(
  deadLetters: RecordDeadLetters | undefined,
  record: StreamRecord<unknown>,
  error: unknown,
  what: string,
): void {
  if (deadLetters === undefined || error instanceof CdcflowError) throw error;
  deadLetters.reject({
    kind: 'user-code',
    reason: `${what} threw ${messageOf(error)}`,
    error,
    value: record.value,
    ...(record.key === undefined ? {} : { key: record.key }),
    ...(record.timestamp === undefined ? {} : { timestampMs: record.timestamp }),
  });
}
