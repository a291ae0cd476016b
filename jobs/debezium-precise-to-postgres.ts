/**
 * A real Debezium connector left at its defaults (decimal.handling.mode=precise, JSON without
 * schemas) into Postgres, exactly once: NUMERIC columns decoded with the scale given here, a
 * TRUNCATE of the source empties the target too (docs/debezium-values.md).
 *   CDCFLOW_TOPIC=<prefix>.public.orders CDCFLOW_DECIMAL_COLUMNS=amount=2 CDCFLOW_BOUNDED=1 npx tsx jobs/debezium-precise-to-postgres.ts
 * Env: as jobs/orders-to-postgres.ts (the target table must exist, columns as the source's);
 * CDCFLOW_DECIMAL_COLUMNS lists EVERY NUMERIC column with its scale (`amount=2,tax=4`).
 */
import { StreamEnvironment, debeziumSource, postgresSink } from '../runtime/index.ts';
import type { Order } from './orders-projection.ts';

const e = process.env;
const topic = e['CDCFLOW_TOPIC'] ?? 'cdc.ecommerce.orders';
const columns = Object.fromEntries((e['CDCFLOW_DECIMAL_COLUMNS'] ?? 'amount=2').split(',').map((c) => c.split('=')).map(([name = '', scale]) => [name, Number(scale)]));
const env = StreamEnvironment.create({
  jobName: e['CDCFLOW_JOB_NAME'] ?? 'debezium-precise-to-postgres',
  checkpoints: { intervalMs: 1000, dir: e['CDCFLOW_CHECKPOINT_DIR'] ?? './.cdcflow/checkpoints' },
  state: { backend: 'rocksdb', dir: e['CDCFLOW_STATE_DIR'] ?? './.cdcflow/state' },
});
env
  .fromSource(debeziumSource<Order>({ topics: [topic], groupId: e['CDCFLOW_GROUP_ID'] ?? 'debezium-precise-to-postgres', ...(e['CDCFLOW_BOUNDED'] === '1' ? { bounded: 'latest' as const } : {}),
    decimals: { handling: 'precise', columns } }), { uid: 'source' })
  .keyBy((event) => event.key?.['id'] as number)
  .upsert({ truncate: 'propagate' })
  .uid('upsert')
  .sinkTo(postgresSink<number, Order>({ table: e['CDCFLOW_PG_TABLE'] ?? 'orders_projection', primaryKey: ['id'] }));
await env.execute();
