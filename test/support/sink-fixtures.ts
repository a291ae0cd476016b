/**
 * Changes, records and a failing-once upsert job for the sink tests (Postgres, Redis, Elasticsearch),
 * which each need the same shapes with their own row type.
 */
import { join } from 'node:path';
import type { StreamRecord } from '../../operators/operator.ts';
import type { SinkDefinition } from '../../operators/sinks/sink.ts';
import type { TableChange } from '../../operators/table-change.ts';
import { StreamEnvironment, fromCollection, type ChangeEvent, type JobResult } from '../../runtime/index.ts';
import { streamPosition } from '../../state/change-position.ts';
import { CdcflowError } from '../../state/errors.ts';
import { testChangeEvent } from './change-events.ts';

/** An upsert of `row` at `lsn` (partition 0), keyed by its id. */
export function upsertChange<R extends { readonly id: number }>(
  row: R,
  lsn: number,
  sourceTsMs: number,
): TableChange<number, R> {
  return { kind: 'upsert', key: row.id, row, previous: null, position: streamPosition(0, lsn), sourceTsMs };
}

export function deleteChange<R>(id: number, lsn: number, sourceTsMs: number): TableChange<number, R> {
  return { kind: 'delete', key: id, previous: null, position: streamPosition(0, lsn), sourceTsMs };
}

/** Changes as the records a sink operator's `processBatch` takes. */
export const asRecords = <T>(...values: T[]): StreamRecord<T>[] =>
  values.map((value) => ({ value, timestamp: undefined }));

/** A Debezium-shaped change event of `public.orders` at `lsn`; `row` is `after` (null for a delete). */
export function orderEvent<R extends { readonly id: number }>(
  lsn: number,
  op: 'c' | 'u' | 'd',
  row: R,
): ChangeEvent<R> {
  return testChangeEvent(op, lsn, op === 'd' ? null : row, { id: row.id }, { db: 'e', sourceTsMs: Date.now() });
}

/**
 * Runs `events` through keyBy(id) → upsert → `sink` with checkpoints every 30 ms under `dir`, and
 * throws one retriable fault at the `failAt`-th record, so the job restarts once from a checkpoint.
 */
export function runUpsertJobFailingOnce<R extends { readonly id: number }>(options: {
  readonly jobName: string;
  readonly dir: string;
  readonly events: readonly ChangeEvent<R>[];
  readonly failAt: number;
  readonly sink: SinkDefinition<TableChange<number, R>>;
}): Promise<JobResult> {
  let failed = false;
  let seen = 0;
  const env = StreamEnvironment.create({
    jobName: options.jobName,
    checkpoints: { dir: join(options.dir, 'chk'), intervalMs: 30 },
    state: { backend: 'memory', dir: join(options.dir, 'state') },
    restart: { initialDelayMs: 10, maxDelayMs: 10 },
    log: () => undefined,
  });
  env
    .fromSource(fromCollection([...options.events], { batchSize: 50 }))
    .map((e) => {
      if (!failed && ++seen === options.failAt) {
        failed = true;
        // A transient fault (retriable): a plain Error thrown by user code is the record's failure, dead-lettered.
        throw new CdcflowError('injected failure', { domain: 'external', retriable: true });
      }
      return e;
    })
    .keyBy((e) => e.key?.['id'] as number)
    .upsert<R>()
    .sinkTo(options.sink);
  return env.execute();
}
