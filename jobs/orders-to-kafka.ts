/**
 * The reference projection written exactly once to a (compacted) Kafka topic: Debezium orders →
 * keyBy id → upsert → kafkaSink, one Kafka transaction per checkpoint, a delete as a tombstone,
 * the commit-order position in the `cdcflow.position` header. read_committed consumers see each table change once, after
 * its checkpoint completes.
 *   KAFKA_BROKERS=127.0.0.1:19092 cdcflow run jobs/orders-to-kafka.ts --set bounded=true
 * Settings: as jobs/orders-projection.ts, plus brokers (KAFKA_BROKERS) and targetTopic
 * (CDCFLOW_TARGET_TOPIC, default orders.latest; create it with cleanup.policy=compact: only the
 * latest row per id needs keeping).
 */
import { z } from 'zod';
import {
  StreamEnvironment,
  environmentOptions,
  kafkaSink,
  loadJobConfig,
  tableChangeMessage,
} from '../runtime/index.ts';
import { ordersProjectionJob, projectionOptions, projectionSettings, type Order } from './orders-projection.ts';

const config = loadJobConfig({
  name: 'orders-to-kafka',
  settings: projectionSettings.extend({
    brokers: z.string().min(1).meta({ env: 'KAFKA_BROKERS' }).default('127.0.0.1:19092'),
    targetTopic: z.string().min(1).meta({ env: 'CDCFLOW_TARGET_TOPIC' }).default('orders.latest'),
  }),
});
const print = (line: string) => console.log(`[orders-to-kafka ${process.pid}] ${line}`);
const env = StreamEnvironment.create(environmentOptions(config, { log: print }));
const sink = kafkaSink({
  brokers: config.settings.brokers.split(','),
  topic: config.settings.targetTopic,
  serialize: tableChangeMessage<number, Order>((id) => ({ id })),
  log: print,
  onTransaction: (t) => print(`checkpoint ${t.checkpointId} ${t.phase}: ${t.records} records`),
});
ordersProjectionJob(env, projectionOptions(config), sink);
const { restarts } = await env.execute();
print(`finished: ${restarts} restarts`);
