/**
 * npm run demo — brings up Kafka from the project stack, writes the reference orders workload
 * (Debezium JSON change events) to `cdc.ecommerce.orders`, runs jobs/orders-op-counts.ts over it
 * with RocksDB state and 1 s checkpoints, and prints the counts beside what was produced.
 */
import { rmSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { kafkaClientConfig, resolveKafkaConnection } from '../operators/kafka-connection.ts';
import { opCountsJob, type OpCount } from '../jobs/orders-op-counts.ts';
import { StreamEnvironment, collectSink } from '../runtime/index.ts';
import { endpointsFromEnv } from './stack/endpoints.ts';
import { selectServices } from './stack/services/index.ts';
import { up } from './stack/stack.ts';
import { generateWorkload } from './workload/generator.ts';
import { countByOp } from './workload/oracle.ts';
import { ORDERS_TOPIC } from './workload/orders-model.ts';
import { produceWorkload } from './workload/producer.ts';

const workload = { seed: 7, keys: 2_000, events: 20_000, partitions: 6 };
const started = Date.now();
const step = (text: string) => console.log(`\n[demo +${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);

step('bringing up Kafka (npm run stack -- up kafka)');
if (process.env['KAFKA_BROKERS'] === undefined) await up(selectServices(['kafka']), (line) => console.log(`  ${line}`));
const brokers = endpointsFromEnv().kafkaBrokers.split(',');

step(`recreating ${ORDERS_TOPIC} and writing ${workload.events} Debezium change events over ${workload.keys} orders`);
const admin = new Kafka(kafkaClientConfig(resolveKafkaConnection({ brokers }), { clientId: 'cdcflow-demo', logLevel: logLevel.NOTHING })).admin();
await admin.connect();
if ((await admin.listTopics()).includes(ORDERS_TOPIC)) {
  await admin.deleteTopics({ topics: [ORDERS_TOPIC] });
  // Deletion is asynchronous in Kafka: wait until the broker no longer lists the topic.
  for (let i = 0; i < 100 && (await admin.listTopics()).includes(ORDERS_TOPIC); i++) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, 500));
}
await admin.disconnect();
const produced = await produceWorkload({ brokers, topic: ORDERS_TOPIC, workload });
console.log(`  wrote ${produced.records} messages (${(produced.bytes / 1e6).toFixed(1)} MB)`);

step('running jobs/orders-op-counts.ts: debeziumSource → keyBy(op) → process(count in RocksDB) → sink');
const dir = './.cdcflow/demo';
rmSync(dir, { recursive: true, force: true });
const env = StreamEnvironment.create({
  jobName: 'orders-op-counts',
  checkpoints: { intervalMs: 1000, dir: `${dir}/checkpoints` },
  state: { backend: 'rocksdb', dir: `${dir}/state` },
  log: (line) => console.log(`  ${line}`),
});
const updates: OpCount[] = [];
opCountsJob(env, ORDERS_TOPIC, `cdcflow-demo-${Date.now()}`, collectSink(updates, { transactional: true }));
const jobStarted = Date.now();
await env.execute();
const seconds = (Date.now() - jobStarted) / 1000;

const counted = new Map<string, number>();
for (const u of updates) counted.set(u.op, u.count);
const expected = countByOp(generateWorkload(workload));
step(`done: ${updates.length} events processed in ${seconds.toFixed(1)} s`);
console.table(
  (['r', 'c', 'u', 'd'] as const).map((op) => ({ op, counted: counted.get(op) ?? 0, produced: expected[op] })),
);
console.log(`  tombstones skipped: ${expected.tombstones}`);
const ok = (['r', 'c', 'u', 'd'] as const).every((op) => (counted.get(op) ?? 0) === expected[op]);
console.log(ok ? '\nOK: every change event counted exactly once.' : '\nMISMATCH between counted and produced events.');
process.exit(ok ? 0 : 1);
