/**
 * A decoded change event written back as the Debezium JSON envelope it came from (schemaless,
 * decimals as strings), so a stage downstream of a repartition topic reads it with the same
 * `debeziumSource` — its read_committed fetches, checkpointed positions and watermarks — as the
 * first stage reads the connector's topic. Commit order survives: `source.sequence` is rebuilt
 * from the event's position, so the decoded position is the same.
 */
import type { ChangeEvent } from '../../operators/change-event.ts';
import { positionParts } from '../../state/change-position.ts';

/** `source.sequence` (`["<last commit LSN>","<change LSN>"]`) of a position; a zero commit LSN is null. */
function sequenceOf(event: ChangeEvent<unknown>): string {
  const { commitLsn, changeLsn } = positionParts(event.source.position);
  return JSON.stringify([commitLsn === 0n ? null : commitLsn.toString(), changeLsn.toString()]);
}

/** The Debezium JSON value of `event` (what `decodeDebeziumJson` decodes back into the same event). */
export function debeziumEnvelopeJson(event: ChangeEvent<unknown>): string {
  return JSON.stringify({
    before: event.before,
    after: event.after,
    source: {
      db: event.source.db,
      schema: event.source.schema,
      table: event.source.table,
      lsn: event.source.lsn,
      sequence: sequenceOf(event),
      txId: event.source.txId,
      ts_ms: event.source.tsMs,
      snapshot: event.source.snapshot,
    },
    op: event.op,
    ts_ms: event.tsMs,
    ...(event.transaction === undefined
      ? {}
      : {
          transaction: {
            id: event.transaction.id,
            total_order: event.transaction.totalOrder,
            data_collection_order: event.transaction.dataCollectionOrder,
          },
        }),
  });
}
