/**
 * TRUNCATE (`op: t`) in the upsert: what it does is the job's choice (`UpsertOptions.truncate`).
 *
 * `propagate` turns a truncate at position P into a delete of every key whose stored row is older
 * than P (a tombstone at P, emitted downstream as an ordinary delete, so every sink applies it
 * under its own exactly-once rules, in order with the other changes), and records P as the table's
 * "truncated at" guard: a change of a key the state never held that is processed after the
 * truncate but committed before it (it came through another partition) is dropped, not
 * resurrected. Keys whose stored row is newer than P (committed after the truncate, processed
 * before it) are kept. Rows of the target the job never wrote are not touched.
 */
import { CdcflowError } from '../../state/errors.ts';
import type { ChangeEvent } from '../change-event.ts';

/** What the upsert does with a TRUNCATE. */
export type TruncateHandling = 'fail' | 'propagate';

/** A TRUNCATE reached an upsert configured to refuse it (the default). Not retriable: the same event comes back. */
export class TruncateRefusedError extends CdcflowError {
  constructor(event: ChangeEvent<unknown>) {
    const { schema, table, lsn } = event.source;
    super(
      `TRUNCATE of ${schema}.${table} (LSN ${lsn}, ${event.origin.topic}/${event.origin.partition}@${event.origin.offset}) reached upsert with truncate: 'fail' (the default). ` +
        `To empty the target too, set upsert({ truncate: 'propagate' }); to keep the target's rows, make the connector skip truncates ` +
        `(Debezium skipped.operations=t) — the target then differs from the source until it is rebuilt`,
      { domain: 'user', retriable: false },
    );
  }
}

const GUARD_PREFIX = '\u0000cdcflow:truncated:';

/**
 * The key of a table's "truncated at" guard: an entry of the upsert table itself (a tombstone at
 * the truncate's position), under a key no primary key can equal, so it costs no extra state.
 */
export function guardKeyOf(source: { readonly schema: string; readonly table: string }): string {
  return `${GUARD_PREFIX}${source.schema}.${source.table}`;
}

export function isGuardKey(key: unknown): boolean {
  return typeof key === 'string' && key.startsWith(GUARD_PREFIX);
}
