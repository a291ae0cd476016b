/**
 * What `upsert()` emits: the table as a changelog of the latest row per key. Each change carries
 * the LSN that produced it, so an idempotent sink can refuse to go backwards under replay, and
 * the source commit time, so sinks can report freshness.
 */
export type TableChange<K, Row> =
  | { readonly kind: 'upsert'; readonly key: K; readonly row: Row; readonly previous: Row | null; readonly lsn: number; readonly sourceTsMs: number }
  | { readonly kind: 'delete'; readonly key: K; readonly previous: Row | null; readonly lsn: number; readonly sourceTsMs: number };
