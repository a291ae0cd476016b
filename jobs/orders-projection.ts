/**
 * The reference projection (WORKLOAD.md, job 1): Debezium orders → keyBy id → upsert (latest row
 * per order, commit-order-guarded, RocksDB, 1 s checkpoints) → sink. Run it (it prints its progress):
 *   cdcflow run jobs/orders-projection.ts --set bounded=true     (or: npx tsx jobs/orders-projection.ts ...)
 * Settings (config file `settings`, --set, or env): topic (CDCFLOW_TOPIC), groupId (CDCFLOW_GROUP_ID,
 * default the job name), bounded (CDCFLOW_BOUNDED=1: stop at the end offsets found at start),
 * sessionTimeoutMs (CDCFLOW_SESSION_TIMEOUT_MS), decimalHandling (CDCFLOW_DECIMAL_HANDLING=precise|string|double:
 * the connector's decimal.handling.mode, JSON without schemas; `amount` is numeric(12,2)), truncate
 * (CDCFLOW_TRUNCATE=fail|propagate, docs/debezium-values.md). Shared knobs (checkpoint root, parallelism, ...): README.
 */
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import {
  StreamEnvironment,
  debeziumSource,
  environmentOptions,
  loadJobConfig,
  type ChangeEvent,
  type DebeziumDecimalOptions,
  type JobConfig,
  type SinkDefinition,
  type SourceDefinition,
  type TableChange,
  type UpsertOptions,
} from '../runtime/index.ts';

/** A row of `public.orders` as Debezium's JSON converter writes it (columns are not checked). */
export interface Order {
  readonly id: number;
  readonly status: string;
  readonly amount: string;
  readonly [column: string]: unknown;
}
export interface ProjectionOptions {
  readonly topic: string;
  readonly groupId: string;
  readonly bounded: boolean;
  readonly sessionTimeoutMs?: number;
  readonly decimals?: DebeziumDecimalOptions;
  readonly truncate?: UpsertOptions['truncate'];
}

/** The settings every projection job (orders-to-*) shares. */
export const projectionSettings = z.object({
  topic: z.string().min(1).meta({ env: 'CDCFLOW_TOPIC' }).default('cdc.ecommerce.orders'),
  groupId: z.string().min(1).meta({ env: 'CDCFLOW_GROUP_ID' }).optional(),
  bounded: z.boolean().meta({ env: 'CDCFLOW_BOUNDED' }).default(false),
  sessionTimeoutMs: z.number().int().positive().meta({ env: 'CDCFLOW_SESSION_TIMEOUT_MS' }).optional(),
  decimalHandling: z.enum(['precise', 'string', 'double']).meta({ env: 'CDCFLOW_DECIMAL_HANDLING' }).optional(),
  truncate: z.enum(['fail', 'propagate']).meta({ env: 'CDCFLOW_TRUNCATE' }).optional(),
});

export function projectionOptions({
  name,
  settings: s,
}: JobConfig<z.output<typeof projectionSettings>>): ProjectionOptions {
  return {
    topic: s.topic,
    groupId: s.groupId ?? name,
    bounded: s.bounded,
    ...(s.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: s.sessionTimeoutMs }),
    ...(s.decimalHandling === undefined ? {} : { decimals: { handling: s.decimalHandling, columns: { amount: 2 } } }),
    ...(s.truncate === undefined ? {} : { truncate: s.truncate }),
  };
}

/** The projection graph; `source` replaces the Debezium source built from `o` (tests). */
export function ordersProjectionJob(
  env: StreamEnvironment,
  o: ProjectionOptions,
  sink: SinkDefinition<TableChange<number, Order>>,
  source?: SourceDefinition<ChangeEvent<Order>>,
): void {
  const { topic, groupId, bounded, sessionTimeoutMs, decimals, truncate } = o;
  env
    .fromSource(
      source ??
        debeziumSource<Order>({
          topics: [topic],
          groupId,
          ...(bounded ? { bounded: 'latest' } : {}),
          ...(sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs }),
          ...(decimals === undefined ? {} : { decimals }),
        }),
      { uid: 'orders-source' },
    )
    .keyBy((event) => event.key?.['id'] as number)
    .upsert(truncate === undefined ? {} : { truncate })
    .uid('orders-upsert')
    .sinkTo(sink);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const config = loadJobConfig({ name: 'orders-projection', settings: projectionSettings });
  const print = (line: string) => console.log(`[orders-projection ${process.pid}] ${line}`);
  const env = StreamEnvironment.create(environmentOptions(config, { log: print }));
  let changes = 0; // table changes emitted by this process (replays after a restore count again)
  const dropped = async () =>
    (await env.metrics.registry.getSingleMetric('cdcflow_upsert_duplicates_total')?.get())?.values.reduce(
      (n, v) => n + v.value,
      0,
    ) ?? 0;
  ordersProjectionJob(env, projectionOptions(config), {
    name: 'progress',
    createOperator: () => ({
      open: () => print('opened'),
      processBatch: (batch) => void (changes += batch.length),
      notifyCheckpointComplete: async (id) =>
        print(`checkpoint ${id} complete: ${changes} table changes, ${await dropped()} duplicates dropped`),
    }),
  });
  const { restarts } = await env.execute();
  print(`finished: ${changes} table changes, ${await dropped()} duplicates dropped, ${restarts} restarts`);
}
