/**
 * Transaction-consistent output: holds each source transaction's change events back until all of
 * them are here, then emits them in one batch, so a barrier never falls inside a transaction and a
 * two-phase sink (which makes a checkpoint's records visible together) never shows half of one.
 *
 * Completeness comes from Debezium's transaction-metadata topic (`provide.transaction.metadata=true`):
 * END says how many events the transaction wrote, per table. Change events carry
 * `transaction.id` = `"<txId>:<LSN>"` (the LSN part differs per event and from END's), so events
 * and END are matched on the txId part; duplicates (a restarted connector re-sends) are absorbed by
 * `transaction.total_order`. Events without a transaction (snapshot rows) pass straight through.
 *
 * The held-back events are operator state: a checkpoint stores them, a restore brings them back.
 *
 * Costs: latency (a transaction is released when its last event and END are both in, then becomes
 * visible with the next checkpoint); memory and checkpoint size (every open transaction's events,
 * a 5,000-row transaction held whole); the transaction topic must be read too; parallelism 1 only
 * (a transaction's events spread over partitions, i.e. over subtasks).
 */
import { CdcflowError } from '../../state/errors.ts';
import type { ChangeEvent } from '../change-event.ts';
import type { Operator, OperatorMetrics, Output, StreamRecord } from '../operator.ts';
import type { TransactionMarker } from '../sources/kafka/transaction-marker.ts';

/** What the operator reads: the change stream and the marker stream, unioned. */
export type TransactionInput<Row> =
  | { readonly kind: 'change'; readonly event: ChangeEvent<Row> }
  | { readonly kind: 'marker'; readonly marker: TransactionMarker };

export interface TransactionConsistentOptions {
  /**
   * The tables (`"schema.table"`, as END's `data_collections` names them) this job reads; a
   * transaction is complete when the events of these tables are in. @default every table END lists
   */
  readonly collections?: readonly string[];
  /** Fail (non-retriable) rather than hold more events than this: a lost END would otherwise grow without bound. @default 1_000_000 */
  readonly maxBufferedEvents?: number;
}

interface Pending<Row> {
  readonly events: Map<number, StreamRecord<ChangeEvent<Row>>>;
  expected: number | undefined;
}

interface Snapshot<Row> {
  readonly pending: readonly {
    readonly txId: string;
    readonly expected: number | null;
    readonly events: readonly StreamRecord<ChangeEvent<Row>>[];
  }[];
  readonly released: readonly string[];
}

/** How many released transaction ids are remembered, so replayed events of them pass instead of waiting forever. */
const RELEASED_MEMORY = 10_000;

export function transactionConsistent<Row>(
  options: TransactionConsistentOptions = {},
): Operator<TransactionInput<Row>, ChangeEvent<Row>> {
  const collections = options.collections === undefined ? undefined : new Set(options.collections);
  const maxBuffered = options.maxBufferedEvents ?? 1_000_000;
  let pending = new Map<string, Pending<Row>>();
  let released = new Set<string>();
  let buffered = 0;
  let metrics: OperatorMetrics | undefined;

  const txIdOf = (id: string): string => {
    const colon = id.indexOf(':');
    return colon < 0 ? id : id.slice(0, colon);
  };
  const entry = (txId: string): Pending<Row> => {
    let p = pending.get(txId);
    if (p === undefined) pending.set(txId, (p = { events: new Map(), expected: undefined }));
    return p;
  };
  const expectedOf = (marker: TransactionMarker): number =>
    collections === undefined
      ? (marker.eventCount ?? 0)
      : marker.dataCollections.reduce((n, c) => n + (collections.has(c.dataCollection) ? c.eventCount : 0), 0);

  function releaseIfComplete(txId: string, p: Pending<Row>, out: Output<ChangeEvent<Row>>): void {
    if (p.expected === undefined || p.events.size < p.expected) return;
    for (const order of [...p.events.keys()].sort((a, b) => a - b)) {
      const record = p.events.get(order) as StreamRecord<ChangeEvent<Row>>;
      out.emit(record.value, record.timestamp);
    }
    buffered -= p.events.size;
    pending.delete(txId);
    released.add(txId);
    if (released.size > RELEASED_MEMORY) released.delete(released.values().next().value as string);
    metrics?.count('cdcflow_transactions_released_total', {});
  }

  return {
    open(context, restored) {
      if (context.parallelism > 1)
        throw new CdcflowError(
          "transactionConsistent needs parallelism 1: a transaction's events spread over partitions, so over subtasks",
          { domain: 'user' },
        );
      metrics = context.metrics;
      const snapshot = restored as Snapshot<Row> | undefined;
      pending = new Map();
      buffered = 0;
      for (const p of snapshot?.pending ?? []) {
        pending.set(p.txId, {
          events: new Map(p.events.map((r) => [r.value.transaction?.totalOrder ?? 0, r])),
          expected: p.expected ?? undefined,
        });
        buffered += p.events.length;
      }
      released = new Set(snapshot?.released ?? []);
    },
    processBatch(batch, out) {
      for (const { value, timestamp } of batch) {
        if (value.kind === 'marker') {
          if (value.marker.status !== 'END') continue;
          const txId = txIdOf(value.marker.id);
          if (released.has(txId)) continue;
          const p = entry(txId);
          p.expected = expectedOf(value.marker);
          releaseIfComplete(txId, p, out);
          continue;
        }
        const { event } = value;
        if (event.transaction === undefined) {
          out.emit(event, timestamp);
          continue;
        }
        const txId = txIdOf(event.transaction.id);
        if (released.has(txId)) {
          out.emit(event, timestamp); // a replay of a released transaction: the upsert drops it
          continue;
        }
        const p = entry(txId);
        if (!p.events.has(event.transaction.totalOrder)) {
          p.events.set(event.transaction.totalOrder, { value: event, timestamp });
          buffered += 1;
        }
        if (buffered > maxBuffered) {
          throw new CdcflowError(
            `transactionConsistent holds ${buffered} events (maxBufferedEvents ${maxBuffered}): is the transaction-metadata topic read, and does 'collections' name the tables this job reads?`,
            { domain: 'user' },
          );
        }
        releaseIfComplete(txId, p, out);
      }
      metrics?.gauge('cdcflow_transaction_buffered_events', buffered);
    },
    snapshotState(): Snapshot<Row> {
      return {
        pending: [...pending].map(([txId, p]) => ({
          txId,
          expected: p.expected ?? null,
          events: [...p.events.values()],
        })),
        released: [...released],
      };
    },
  };
}
