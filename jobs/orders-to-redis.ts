/**
 * The reference projection into Redis, exactly once: Debezium orders → keyBy id → upsert →
 * redisSink. `orders:<id>` holds the order's JSON, is deleted with the order, and expires 30 days
 * after the order was delivered; each checkpoint's writes land in one atomic, fenced step.
 *   REDIS_URL=redis://127.0.0.1:16379 cdcflow run jobs/orders-to-redis.ts --set bounded=true
 * Settings: as jobs/orders-projection.ts, plus redisUrl (REDIS_URL) and prefix (CDCFLOW_REDIS_PREFIX, default orders).
 */
import { z } from 'zod';
import {
  StreamEnvironment,
  environmentOptions,
  loadJobConfig,
  redisSink,
  tableChangeWrite,
  type TableChange,
} from '../runtime/index.ts';
import { ordersProjectionJob, projectionOptions, projectionSettings, type Order } from './orders-projection.ts';

const config = loadJobConfig({
  name: 'orders-to-redis',
  settings: projectionSettings.extend({
    redisUrl: z.string().min(1).meta({ env: 'REDIS_URL' }).optional(),
    prefix: z.string().min(1).meta({ env: 'CDCFLOW_REDIS_PREFIX' }).default('orders'),
  }),
});
const { redisUrl, prefix } = config.settings;
const print = (line: string) => console.log(`[orders-to-redis ${process.pid}] ${line}`);
const env = StreamEnvironment.create(environmentOptions(config, { log: print }));
const sink = redisSink<number, Order>({
  prefix,
  ...(redisUrl === undefined ? {} : { url: redisUrl }),
  toWrite: (change: TableChange<number, Order>) => ({
    ...tableChangeWrite(change), // `<prefix>:<id>` = the row's JSON, or a delete
    ...(change.kind === 'upsert' && change.row.status === 'delivered' ? { ttl: 30 * 86_400 } : {}),
  }),
  log: print,
  onTransaction: (t) => print(`checkpoint ${t.checkpointId} ${t.phase}: ${t.records} keys`),
});
ordersProjectionJob(env, projectionOptions(config), sink);
const { restarts } = await env.execute();
print(`finished: ${restarts} restarts`);
