/**
 * Changes the table refused (or would refuse), and records that cannot be mapped onto it: never
 * written, or rolled back to their savepoint. The sink's `onRefused` policy takes each (dead
 * letter, fail, skip); without a dead-letter route the job fails naming the key and offset.
 */
import type { RecordDeadLetters } from '../../record-dead-letters.ts';
import { PostgresSinkError } from './pg-session.ts';
import type { KeyedChange, RefusedChange } from './table-writer.ts';

export interface Refusal {
  readonly reason: string;
  readonly error: unknown;
  readonly value: unknown;
  readonly keyId?: string;
  readonly origin?: NonNullable<KeyedChange['origin']>;
}

export class RowRefusals {
  constructor(
    private readonly table: string,
    private readonly uid: string,
    private readonly deadLetters: RecordDeadLetters | undefined,
    private readonly policy: 'dead-letter' | 'fail' | 'skip',
  ) {}

  all(refused: readonly RefusedChange[]): void {
    for (const { change, error, sqlState } of refused) {
      const row = change.kind === 'upsert' ? change.row : change.key;
      this.one({
        reason: `${this.table} refused the ${change.kind} of key ${change.keyId} (SQLSTATE ${sqlState}): ${(error as Error).message}`,
        error,
        value: row,
        keyId: change.keyId,
        ...(change.origin === undefined ? {} : { origin: change.origin }),
      });
    }
  }

  one(refusal: Refusal): void {
    const { reason, error, value, keyId, origin } = refusal;
    if (this.deadLetters === undefined) {
      const where = origin === undefined ? '' : ` (read at ${origin.topic}/${origin.partition}@${origin.offset})`;
      throw new PostgresSinkError(`postgresSink ${this.uid}: ${reason}${where}`, undefined, {
        domain: 'user',
        retriable: false,
        cause: error,
      });
    }
    this.deadLetters.reject(
      {
        kind: 'sink-refused',
        reason,
        error,
        value,
        ...(keyId === undefined ? {} : { key: keyId }),
        ...(origin === undefined ? {} : { origin }),
      },
      this.policy,
    );
  }
}
