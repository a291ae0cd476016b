/**
 * A job file for the parallel-execution tests, run as a child process (`node --import tsx`) so
 * that `parallelism > 1` can start worker threads that run this same file. Configured by
 * CDCFLOW_TEST_JOB (JSON, see `ParallelJobConfig`); CDCFLOW_PARALLELISM sets the parallelism.
 * Its sinks append committed records as JSON lines to `<outDir>/<sink>-<subtask>.jsonl`.
 */
import { pathToFileURL } from 'node:url';
import { ordersProjectionJob, type Order } from '../../jobs/orders-projection.ts';
import { revenueWindowsJob, type OrderEvent } from '../../jobs/revenue-windows.ts';
import {
  StreamEnvironment,
  debeziumSource,
  fromCollection,
  type ChangeEvent,
  type SourceDefinition,
} from '../../runtime/index.ts';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import type { WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { jsonLinesSink, throttled } from './json-lines-sink.ts';
import { decodeWorkloadRecord } from './workload-events.ts';

export interface ParallelJobConfig {
  readonly job: 'projection' | 'revenue';
  /** A generated workload as a bounded collection, or a Kafka topic. */
  readonly source:
    | { readonly kind: 'collection'; readonly workload: WorkloadOptions }
    | {
        readonly kind: 'kafka';
        readonly topic: string;
        readonly groupId: string;
        readonly bounded: boolean;
        readonly metadataMaxAgeMs?: number;
      };
  readonly checkpointDir: string;
  readonly stateDir: string;
  readonly outDir: string;
  readonly intervalMs?: number;
  /** Sleep this long per batch before keyBy, so a kill lands mid-run. */
  readonly throttleMs?: number;
  /** Subtask 1's sink throws once after its first completed checkpoint (creating `marker`), to exercise failover. */
  readonly failOnceMarker?: string;
  /** The injected failure says `retriable: false` (the job must fail without restarting). @default retriable */
  readonly failNonRetriable?: boolean;
}

export const PARALLEL_JOB_FILE = 'test/support/parallel-job.ts';

function collectionOf(workload: WorkloadOptions): SourceDefinition<ChangeEvent<Order>> {
  const events: ChangeEvent<Order>[] = [];
  for (const r of generateWorkload(workload)) {
    if (r.value === null) continue;
    const decoded = decodeWorkloadRecord<Order>(r);
    if (decoded.kind === 'change') events.push(decoded.event);
  }
  return fromCollection(events, { batchSize: 250 });
}

async function main(config: ParallelJobConfig): Promise<void> {
  const print = (line: string) => console.log(`[parallel-job ${process.pid}] ${line}`);
  const env = StreamEnvironment.create({
    jobName: `parallel-${config.job}`,
    checkpoints: { intervalMs: config.intervalMs ?? 300, dir: config.checkpointDir },
    state: { backend: 'rocksdb', dir: config.stateDir },
    restart: config.failOnceMarker === undefined ? { maxAttempts: 0 } : { maxAttempts: 3, initialDelayMs: 200 },
    log: print,
  });
  const { source: s } = config;
  const kafkaOptions =
    s.kind === 'kafka'
      ? {
          ...(s.bounded ? { bounded: 'latest' as const } : {}),
          ...(s.metadataMaxAgeMs === undefined ? {} : { metadataMaxAgeMs: s.metadataMaxAgeMs }),
        }
      : {};
  const source =
    s.kind === 'collection'
      ? collectionOf(s.workload)
      : debeziumSource<Order>({ topics: [s.topic], groupId: s.groupId, sessionTimeoutMs: 6_000, ...kafkaOptions });
  const paced = throttled(source, config.throttleMs ?? 0);
  if (config.job === 'projection') {
    ordersProjectionJob(
      env,
      { topic: '', groupId: '', bounded: true },
      jsonLinesSink(config.outDir, 'changes', print, config.failOnceMarker, config.failNonRetriable !== true),
      paced,
    );
  } else {
    revenueWindowsJob(env, paced as SourceDefinition<OrderEvent>, {
      windows: jsonLinesSink(config.outDir, 'windows'),
      late: jsonLinesSink(config.outDir, 'late'),
    });
  }
  const { restarts } = await env.execute();
  print(`finished: ${restarts} restarts`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await main(JSON.parse(process.env['CDCFLOW_TEST_JOB'] ?? '{}') as ParallelJobConfig);
}
