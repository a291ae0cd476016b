/**
 * What one bulk item's status means for an idempotent, externally versioned sink:
 * - `applied`: written (or a delete of a document that was not there: the version is recorded);
 * - `stale`: 409 — the document already has this version or a newer one; a replay, success;
 * - `retry`: the cluster is busy or failing (429, 5xx); send it again after a back-off;
 * - `dead`: the document itself is refused (mapping errors and other 4xx); retrying cannot help.
 */
export type ItemOutcome = 'applied' | 'stale' | 'retry' | 'dead';

export function itemOutcome(status: number, kind: 'index' | 'delete'): ItemOutcome {
  if (status >= 200 && status < 300) return 'applied';
  if (status === 404 && kind === 'delete') return 'applied';
  if (status === 409) return 'stale';
  if (status === 429 || status >= 500 || status === 0) return 'retry';
  return 'dead';
}

/** Whole-request failures worth retrying: no response (connection), throttling, server errors. */
export function requestRetriable(status: number | undefined): boolean {
  return status === undefined || status === 429 || status >= 500;
}
