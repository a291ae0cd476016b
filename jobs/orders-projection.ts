/**
 * The reference projection (WORKLOAD.md, job 1): Debezium orders → keyBy id → upsert (latest row
 * per order, commit-order-guarded, RocksDB, 1 s checkpoints) → sink. Run it (it prints its progress):
 *   CDCFLOW_TOPIC=cdc.ecommerce.orders CDCFLOW_BOUNDED=1 npx tsx jobs/orders-projection.ts
 * Env: KAFKA_BROKERS, CDCFLOW_TOPIC, CDCFLOW_GROUP_ID, CDCFLOW_CHECKPOINT_DIR, CDCFLOW_STATE_DIR,
 * CDCFLOW_BOUNDED=1 (stop at the end offsets found at start), CDCFLOW_SESSION_TIMEOUT_MS.
 */
import { pathToFileURL } from 'node:url';
import { StreamEnvironment, debeziumSource, type ChangeEvent, type SinkDefinition, type SourceDefinition, type TableChange } from '../runtime/index.ts';

/** A row of `public.orders` as Debezium's JSON converter writes it (columns are not checked). */
export interface Order { readonly id: number; readonly status: string; readonly amount: string; readonly [column: string]: unknown }
export interface ProjectionOptions { readonly topic: string; readonly groupId: string; readonly bounded: boolean; readonly sessionTimeoutMs?: number }

/** The projection graph; `source` replaces the Debezium source built from `o` (tests). */
export function ordersProjectionJob(env: StreamEnvironment, o: ProjectionOptions, sink: SinkDefinition<TableChange<number, Order>>, source?: SourceDefinition<ChangeEvent<Order>>): void {
  const { topic, groupId, bounded, sessionTimeoutMs } = o;
  env
    .fromSource(source ?? debeziumSource<Order>({ topics: [topic], groupId, ...(bounded ? { bounded: 'latest' } : {}), ...(sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs }) }), { uid: 'orders-source' })
    .keyBy((event) => event.key?.['id'] as number)
    .upsert()
    .uid('orders-upsert')
    .sinkTo(sink);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { CDCFLOW_TOPIC: topic = 'cdc.ecommerce.orders', CDCFLOW_GROUP_ID: groupId = 'orders-projection', CDCFLOW_SESSION_TIMEOUT_MS: session } = process.env;
  const print = (line: string) => console.log(`[orders-projection ${process.pid}] ${line}`);
  const env = StreamEnvironment.create({
    jobName: 'orders-projection',
    checkpoints: { intervalMs: 1000, dir: process.env['CDCFLOW_CHECKPOINT_DIR'] ?? './.cdcflow/checkpoints' },
    state: { backend: 'rocksdb', dir: process.env['CDCFLOW_STATE_DIR'] ?? './.cdcflow/state' },
    log: print,
  });
  let changes = 0; // table changes emitted by this process (replays after a restore count again)
  const dropped = async () => (await env.metrics.registry.getSingleMetric('cdcflow_upsert_duplicates_total')?.get())?.values.reduce((n, v) => n + v.value, 0) ?? 0;
  ordersProjectionJob(env, { topic, groupId, bounded: process.env['CDCFLOW_BOUNDED'] === '1', ...(session === undefined ? {} : { sessionTimeoutMs: Number(session) }) }, {
    name: 'progress',
    createOperator: () => ({
      open: () => print('opened'),
      processBatch: (batch) => void (changes += batch.length),
      notifyCheckpointComplete: async (id) => print(`checkpoint ${id} complete: ${changes} table changes, ${await dropped()} duplicates dropped`),
    }),
  });
  const { restarts } = await env.execute();
  print(`finished: ${changes} table changes, ${await dropped()} duplicates dropped, ${restarts} restarts`);
}
