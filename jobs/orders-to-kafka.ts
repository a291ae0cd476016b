/**
 * The reference projection written exactly once to a (compacted) Kafka topic: Debezium orders →
 * keyBy id → upsert → kafkaSink, one Kafka transaction per checkpoint, a delete as a tombstone,
 * the commit-order position in the `cdcflow.position` header. read_committed consumers see each table change once, after
 * its checkpoint completes.
 *   KAFKA_BROKERS=127.0.0.1:19092 CDCFLOW_BOUNDED=1 npx tsx jobs/orders-to-kafka.ts
 * Env: as jobs/orders-projection.ts, plus CDCFLOW_JOB_NAME and CDCFLOW_TARGET_TOPIC (default
 * orders.latest; create it with cleanup.policy=compact: only the latest row per id needs keeping).
 */
import { StreamEnvironment, kafkaSink, tableChangeMessage } from '../runtime/index.ts';
import { ordersProjectionJob, type Order } from './orders-projection.ts';

const e = process.env;
const print = (line: string) => console.log(`[orders-to-kafka ${process.pid}] ${line}`);
const brokers = (e['KAFKA_BROKERS'] ?? '127.0.0.1:19092').split(',');
const env = StreamEnvironment.create({
  jobName: e['CDCFLOW_JOB_NAME'] ?? 'orders-to-kafka',
  checkpoints: { intervalMs: 1000, dir: e['CDCFLOW_CHECKPOINT_DIR'] ?? './.cdcflow/checkpoints' },
  state: { backend: 'rocksdb', dir: e['CDCFLOW_STATE_DIR'] ?? './.cdcflow/state' },
  log: print,
});
const sink = kafkaSink({
  brokers,
  topic: e['CDCFLOW_TARGET_TOPIC'] ?? 'orders.latest',
  serialize: tableChangeMessage<number, Order>((id) => ({ id })),
  log: print,
  onTransaction: (t) => print(`checkpoint ${t.checkpointId} ${t.phase}: ${t.records} records`),
});
const session = e['CDCFLOW_SESSION_TIMEOUT_MS'];
ordersProjectionJob(env, { topic: e['CDCFLOW_TOPIC'] ?? 'cdc.ecommerce.orders', groupId: e['CDCFLOW_GROUP_ID'] ?? 'orders-to-kafka', bounded: e['CDCFLOW_BOUNDED'] === '1', ...(session === undefined ? {} : { sessionTimeoutMs: Number(session) }) }, sink);
const { restarts } = await env.execute();
print(`finished: ${restarts} restarts`);
