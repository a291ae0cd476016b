/**
 * The record a CDC source emits: one row change as Debezium describes it, normalised.
 * Event time is `source.tsMs` (the commit time in the source database).
 * Order is `source.position` (commit order), never `source.lsn` (see state/change-position.ts).
 */
import type { ChangePosition } from '../state/index.ts';

export type { ChangePosition } from '../state/index.ts';

export type ChangeOp = 'c' | 'u' | 'd' | 'r' | 't';

export interface SourceInfo {
  readonly db: string;
  readonly schema: string;
  readonly table: string;
  /**
   * The change record's own LSN (`source.lsn`), for display and lineage only: concurrent
   * transactions interleave, so it is not commit order. Exact below 2^53.
   */
  readonly lsn: number;
  /**
   * Commit-order position, from Debezium's `source.sequence` (`[last commit LSN, change LSN]`),
   * snapshot rows (`op: r`) in a tier below streamed changes. Every replay guard compares this.
   * Without `source.sequence` (older connectors, other databases) it falls back to `source.lsn`,
   * which is commit order only when transactions do not interleave.
   */
  readonly position: ChangePosition;
  readonly txId: number | null;
  /** Commit time in the source database, epoch milliseconds. */
  readonly tsMs: number;
  /** Debezium's snapshot marker: 'true' | 'last' | 'first' | 'false' | 'incremental'. */
  readonly snapshot: string | null;
}

/** Debezium's `transaction` block (connector option `provide.transaction.metadata=true`). */
export interface TransactionInfo {
  /** `"<txId>:<LSN>"` for Postgres; the LSN part differs per event: match transactions on the txId part. */
  readonly id: string;
  /** Position of the event within its transaction, from 1. */
  readonly totalOrder: number;
  /** Position of the event among its table's events in the transaction, from 1. */
  readonly dataCollectionOrder: number;
}

export interface ChangeEvent<Row> {
  readonly op: ChangeOp;
  readonly before: Row | null;
  readonly after: Row | null;
  readonly source: SourceInfo;
  /** Time the connector processed the event, epoch milliseconds. */
  readonly tsMs: number;
  /** The Kafka message key, decoded (for Debezium: the primary key columns). */
  readonly key: Readonly<Record<string, unknown>> | null;
  /** Where it was read from; carried for dead letters, lineage and offsets. */
  readonly origin: { readonly topic: string; readonly partition: number; readonly offset: string };
  /** Present when the connector provides transaction metadata. */
  readonly transaction?: TransactionInfo;
}
