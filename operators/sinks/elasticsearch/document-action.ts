import type { ChangeOrigin, TableChange } from '../../table-change.ts';
import { externalVersionOf } from './external-version.ts';

/**
 * What the sink does to one document. `version` is an external version — the change's
 * commit-order position packed into an integer (external-version.ts) — so Elasticsearch refuses
 * any write older than what the document already has.
 * `sourceTsMs` (the change's source commit time) only feeds `cdcflow_sink_change_visibility_seconds`.
 */
export type DocumentAction =
  | {
      readonly kind: 'index';
      readonly index: string;
      readonly id: string;
      readonly version: number;
      readonly document: unknown;
      readonly sourceTsMs?: number;
      readonly origin?: ChangeOrigin;
    }
  | {
      readonly kind: 'delete';
      readonly index: string;
      readonly id: string;
      readonly version: number;
      readonly sourceTsMs?: number;
      readonly origin?: ChangeOrigin;
    };

/** The natural mapping of a table changelog: id = the primary key, version = the commit-order position. */
export function tableChangeAction<K, Row>(
  index: string,
  idOf: (key: K) => string = (key) => (typeof key === 'object' ? JSON.stringify(key) : String(key)),
  documentOf: (row: Row) => unknown = (row) => row,
): (change: TableChange<K, Row>) => DocumentAction {
  return (change) => {
    // Carried for dead letters (where the change was read).
    const at = change.origin === undefined ? {} : { origin: change.origin };
    return change.kind === 'delete'
      ? {
          kind: 'delete',
          index,
          id: idOf(change.key),
          version: externalVersionOf(change.position),
          sourceTsMs: change.sourceTsMs,
          ...at,
        }
      : {
          kind: 'index',
          index,
          id: idOf(change.key),
          version: externalVersionOf(change.position),
          document: documentOf(change.row),
          sourceTsMs: change.sourceTsMs,
          ...at,
        };
  };
}
