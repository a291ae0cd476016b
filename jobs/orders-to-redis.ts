/**
 * The reference projection into Redis, exactly once: Debezium orders → keyBy id → upsert →
 * redisSink. `orders:<id>` holds the order's JSON, is deleted with the order, and expires 30 days
 * after the order was delivered; each checkpoint's writes land in one atomic, fenced step.
 *   REDIS_URL=redis://127.0.0.1:16379 CDCFLOW_BOUNDED=1 npx tsx jobs/orders-to-redis.ts
 * Env: as jobs/orders-projection.ts, plus REDIS_URL and CDCFLOW_REDIS_PREFIX (default orders).
 */
import { StreamEnvironment, redisSink, tableChangeWrite, type TableChange } from '../runtime/index.ts';
import { ordersProjectionJob, type Order } from './orders-projection.ts';

const e = process.env;
const print = (line: string) => console.log(`[orders-to-redis ${process.pid}] ${line}`);
const env = StreamEnvironment.create({
  jobName: e['CDCFLOW_JOB_NAME'] ?? 'orders-to-redis',
  checkpoints: { intervalMs: 1000, dir: e['CDCFLOW_CHECKPOINT_DIR'] ?? './.cdcflow/checkpoints' },
  state: { backend: 'rocksdb', dir: e['CDCFLOW_STATE_DIR'] ?? './.cdcflow/state' },
  log: print,
});
const sink = redisSink<number, Order>({
  prefix: e['CDCFLOW_REDIS_PREFIX'] ?? 'orders',
  toWrite: (change: TableChange<number, Order>) => ({
    ...tableChangeWrite(change), // `<prefix>:<id>` = the row's JSON, or a delete
    ...(change.kind === 'upsert' && change.row.status === 'delivered' ? { ttl: 30 * 86_400 } : {}),
  }),
  log: print,
  onTransaction: (t) => print(`checkpoint ${t.checkpointId} ${t.phase}: ${t.records} keys`),
});
const session = e['CDCFLOW_SESSION_TIMEOUT_MS'];
ordersProjectionJob(env, { topic: e['CDCFLOW_TOPIC'] ?? 'cdc.ecommerce.orders', groupId: e['CDCFLOW_GROUP_ID'] ?? 'orders-to-redis', bounded: e['CDCFLOW_BOUNDED'] === '1', ...(session === undefined ? {} : { sessionTimeoutMs: Number(session) }) }, sink);
const { restarts } = await env.execute();
print(`finished: ${restarts} restarts`);
