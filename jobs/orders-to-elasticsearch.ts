/**
 * The reference projection indexed in Elasticsearch, idempotently: Debezium orders → keyBy id →
 * upsert → elasticsearchSink. Each document's external version is the LSN of the change that
 * produced it, so a restore that replays changes cannot move a document back; a delete is a
 * versioned delete. Documents the mapping refuses go to a dead-letter topic.
 *   KAFKA_BROKERS=127.0.0.1:19092 ELASTICSEARCH_URL=http://127.0.0.1:19200 CDCFLOW_BOUNDED=1 npx tsx jobs/orders-to-elasticsearch.ts
 * Env: as jobs/orders-projection.ts, plus ELASTICSEARCH_URL, CDCFLOW_JOB_NAME, CDCFLOW_ES_INDEX
 * (default orders; created with the mapping below if missing) and CDCFLOW_DLQ_TOPIC (default orders.es.dlq).
 */
import { Client } from '@elastic/elasticsearch';
import { StreamEnvironment, elasticsearchSink, tableChangeAction } from '../runtime/index.ts';
import { ordersProjectionJob, type Order } from './orders-projection.ts';

const e = process.env;
const print = (line: string) => console.log(`[orders-to-elasticsearch ${process.pid}] ${line}`);
const brokers = (e['KAFKA_BROKERS'] ?? '127.0.0.1:19092').split(',');
const node = e['ELASTICSEARCH_URL'] ?? 'http://127.0.0.1:19200';
const index = e['CDCFLOW_ES_INDEX'] ?? 'orders';

// Strict, so a document that does not fit is refused (and dead-lettered) instead of widening the mapping.
const es = new Client({ node });
await es.indices.create(
  {
    index,
    body: {
      mappings: {
        dynamic: 'strict',
        properties: { id: { type: 'long' }, customer_id: { type: 'long' }, status: { type: 'keyword' }, amount: { type: 'double' }, currency: { type: 'keyword' }, updated_at: { type: 'date' } },
      },
    },
  },
  { ignore: [400] }, // resource_already_exists_exception: a restart
);
await es.close();

const env = StreamEnvironment.create({
  jobName: e['CDCFLOW_JOB_NAME'] ?? 'orders-to-elasticsearch',
  checkpoints: { intervalMs: 1000, dir: e['CDCFLOW_CHECKPOINT_DIR'] ?? './.cdcflow/checkpoints' },
  state: { backend: 'rocksdb', dir: e['CDCFLOW_STATE_DIR'] ?? './.cdcflow/state' },
  log: print,
});
const sink = elasticsearchSink({
  node,
  // The search view needs no 300-character notes or the shipping address.
  toAction: tableChangeAction<number, Order>(index, String, ({ id, customer_id, status, amount, currency, updated_at }) => ({ id, customer_id, status, amount: Number(amount), currency, updated_at })),
  deadLetters: { brokers, topic: e['CDCFLOW_DLQ_TOPIC'] ?? 'orders.es.dlq' },
  onFlush: (f) => print(`checkpoint ${f.checkpointId} flushed: ${f.documents} documents`),
});
const session = e['CDCFLOW_SESSION_TIMEOUT_MS'];
ordersProjectionJob(env, { topic: e['CDCFLOW_TOPIC'] ?? 'cdc.ecommerce.orders', groupId: e['CDCFLOW_GROUP_ID'] ?? 'orders-to-elasticsearch', bounded: e['CDCFLOW_BOUNDED'] === '1', ...(session === undefined ? {} : { sessionTimeoutMs: Number(session) }) }, sink);
const { restarts } = await env.execute();
print(`finished: ${restarts} restarts`);
