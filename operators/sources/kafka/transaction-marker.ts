/**
 * Debezium's transaction-metadata records (`provide.transaction.metadata=true` → topic
 * `<topic.prefix>.transaction`): one BEGIN and one END per source transaction. They have no `op`;
 * they are not change events and not errors. END carries how many change events the transaction
 * wrote, in total and per table (`data_collections`), which is what lets a consumer know when it
 * has seen all of a transaction.
 */
import { isPlainObject, toSafeInteger } from './debezium-envelope.ts';

export interface TransactionMarker {
  readonly status: 'BEGIN' | 'END';
  /** Debezium's transaction id, `"<txId>:<LSN>"` for Postgres; change events carry it in `transaction.id`. */
  readonly id: string;
  /** END: the number of change events of the transaction; BEGIN: null. */
  readonly eventCount: number | null;
  /** END: events per table (`"schema.table"`); BEGIN: empty. */
  readonly dataCollections: readonly { readonly dataCollection: string; readonly eventCount: number }[];
  /** Commit (END) or begin time in the source database, epoch milliseconds; null when absent. */
  readonly tsMs: number | null;
}

/**
 * A transaction marker when `value` has the shape of one (`status` BEGIN/END, string `id`, no
 * `op`), undefined otherwise; a malformed marker comes back as a reason string.
 */
export function transactionMarkerOf(value: Readonly<Record<string, unknown>>): TransactionMarker | string | undefined {
  const status = value['status'];
  if ((status !== 'BEGIN' && status !== 'END') || 'op' in value) return undefined;
  const id = value['id'];
  if (typeof id !== 'string') return `transaction ${status} record without a string \`id\``;
  const eventCount =
    value['event_count'] === null || value['event_count'] === undefined ? null : toSafeInteger(value['event_count']);
  if (eventCount === undefined) return `transaction ${status} ${id}: \`event_count\` is not a whole number`;
  const dataCollections: { dataCollection: string; eventCount: number }[] = [];
  const collections = value['data_collections'];
  if (Array.isArray(collections)) {
    for (const entry of collections as unknown[]) {
      const name = isPlainObject(entry) ? entry['data_collection'] : undefined;
      const count = isPlainObject(entry) ? toSafeInteger(entry['event_count']) : undefined;
      if (typeof name !== 'string' || count === undefined)
        return `transaction ${status} ${id}: malformed \`data_collections\` entry`;
      dataCollections.push({ dataCollection: name, eventCount: count });
    }
  }
  return { status, id, eventCount, dataCollections, tsMs: toSafeInteger(value['ts_ms']) ?? null };
}
