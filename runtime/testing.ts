/**
 * `cdcflow/testing`: unit-test a job's graph without Kafka, databases or a service stack, the
 * way Kafka Streams users reach for TopologyTestDriver. Build the job against `testJob().env`,
 * feed it Debezium-shaped change events with `changeEvent(...)` through `fromCollection`, collect
 * what its sinks and side outputs receive with `collectSink`, and `run()` it to the end: the
 * input is bounded, so the final watermark fires every window and the run returns. Watermarks
 * advance once per source batch: `fromCollection(events, { batchSize: 1 })` makes each event move
 * it, which is what a test of lateness wants.
 *
 *   const job = testJob();
 *   const rows: TableChange<number, Order>[] = [];
 *   myJob(job.env, fromCollection([changeEvent('c', { id: 1, status: 'new' }, { tsMs: 1000 })]), collectSink(rows));
 *   await job.run();
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChangeEvent, ChangeOp } from '../operators/change-event.ts';
import type { DeadLetter } from '../operators/sources/kafka/dead-letter.ts';
import { snapshotPosition, streamPosition } from '../state/index.ts';
import { StreamEnvironment, type JobResult } from './environment.ts';
import type { EnvironmentOptions } from './job-options.ts';

export { fromCollection } from '../operators/sources/collection-source.ts';
export { collectSink } from '../operators/sinks/collect-sink.ts';

export interface TestJob {
  readonly env: StreamEnvironment;
  /** Dead letters the job wrote (bad records, user code that threw), in order. */
  readonly deadLetters: readonly DeadLetter[];
  /** Runs the job until its bounded sources end, then removes its temporary directories. */
  run(): Promise<JobResult>;
}

export interface TestJobOptions {
  /** @default 'test-job' */
  readonly jobName?: string;
  /** @default 'memory' (no native RocksDB files; use 'rocksdb' to test with the production backend) */
  readonly stateBackend?: 'memory' | 'rocksdb';
  /** Anything else of the environment (checkpoint interval, parallelism stays 1). */
  readonly options?: Partial<Omit<EnvironmentOptions, 'jobName'>>;
}

/** An environment in temporary directories, with no HTTP server, signal handling or Kafka dead-letter writer. */
export function testJob(o: TestJobOptions = {}): TestJob {
  const dir = mkdtempSync(join(tmpdir(), 'cdcflow-test-'));
  const deadLetters: DeadLetter[] = [];
  const env = StreamEnvironment.create({
    jobName: o.jobName ?? 'test-job',
    checkpoints: { dir: join(dir, 'checkpoints'), intervalMs: 200 },
    state: { backend: o.stateBackend ?? 'memory', dir: join(dir, 'state') },
    restore: 'none',
    lifecycle: { handleSignals: false },
    log: () => undefined,
    deadLetters: {
      writer: {
        open: () => Promise.resolve(),
        write: (letters) => {
          deadLetters.push(...letters);
          return Promise.resolve();
        },
        close: () => Promise.resolve(),
      },
    },
    ...o.options,
  });
  return {
    env,
    deadLetters,
    run: async () => {
      try {
        return await env.execute();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

export interface ChangeEventOptions<Row> {
  /** Commit time in the source database (event time), epoch ms. */
  readonly tsMs: number;
  /** Commit order; later changes of a key need a higher one. @default increasing per call */
  readonly lsn?: number;
  /** @default { id: row.id } when the row has an `id` */
  readonly key?: Readonly<Record<string, unknown>>;
  /** The row before an update or delete. @default null */
  readonly before?: Row | null;
  /** @default 'orders' */
  readonly table?: string;
}

let nextLsn = 1;

/**
 * A Debezium change event as the source would decode it: `op` 'c' (insert), 'u' (update),
 * 'd' (delete: `row` is the deleted row, `after` null) or 'r' (snapshot read).
 */
export function changeEvent<Row extends object>(op: ChangeOp, row: Row, o: ChangeEventOptions<Row>): ChangeEvent<Row> {
  const lsn = o.lsn ?? nextLsn++;
  const key = o.key ?? ('id' in row ? { id: (row as { id: unknown }).id } : null);
  const table = o.table ?? 'orders';
  return {
    op,
    before: op === 'd' ? row : (o.before ?? null),
    after: op === 'd' ? null : row,
    source: {
      db: 'test',
      schema: 'public',
      table,
      lsn,
      position: op === 'r' ? snapshotPosition(null, lsn) : streamPosition(lsn, lsn),
      txId: null,
      tsMs: o.tsMs,
      snapshot: op === 'r' ? 'true' : 'false',
    },
    tsMs: o.tsMs,
    key,
    origin: { topic: `test.public.${table}`, partition: 0, offset: String(lsn) },
  };
}

export { JobHarness, type JobHarnessOptions, type HarnessOutputs, type HarnessResults } from './job-harness.ts';
