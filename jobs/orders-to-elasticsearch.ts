/**
 * The reference projection indexed in Elasticsearch, idempotently: Debezium orders → keyBy id →
 * upsert → elasticsearchSink. Each document's external version is the LSN of the change that
 * produced it, so a restore that replays changes cannot move a document back; a delete is a
 * versioned delete. Documents the mapping refuses go to a dead-letter topic.
 *   ELASTICSEARCH_URL=http://127.0.0.1:19200 cdcflow run jobs/orders-to-elasticsearch.ts --set bounded=true
 * Settings: as jobs/orders-projection.ts, plus brokers (KAFKA_BROKERS), node (ELASTICSEARCH_URL),
 * index (CDCFLOW_ES_INDEX, default orders; created with the mapping below if missing) and
 * dlqTopic (CDCFLOW_DLQ_TOPIC, default orders.es.dlq).
 */
import { Client } from '@elastic/elasticsearch';
import { z } from 'zod';
import {
  StreamEnvironment,
  elasticsearchSink,
  environmentOptions,
  loadJobConfig,
  tableChangeAction,
} from '../runtime/index.ts';
import { ordersProjectionJob, projectionOptions, projectionSettings, type Order } from './orders-projection.ts';

const config = loadJobConfig({
  name: 'orders-to-elasticsearch',
  settings: projectionSettings.extend({
    brokers: z.string().min(1).meta({ env: 'KAFKA_BROKERS' }).default('127.0.0.1:19092'),
    node: z.url().meta({ env: 'ELASTICSEARCH_URL' }).default('http://127.0.0.1:19200'),
    index: z.string().min(1).meta({ env: 'CDCFLOW_ES_INDEX' }).default('orders'),
    dlqTopic: z.string().min(1).meta({ env: 'CDCFLOW_DLQ_TOPIC' }).default('orders.es.dlq'),
  }),
});
const { brokers, node, index, dlqTopic } = config.settings;
const print = (line: string) => console.log(`[orders-to-elasticsearch ${process.pid}] ${line}`);

// Strict, so a document that does not fit is refused (and dead-lettered) instead of widening the mapping.
const es = new Client({ node });
const properties = {
  id: { type: 'long' },
  customer_id: { type: 'long' },
  status: { type: 'keyword' },
  amount: { type: 'double' },
  currency: { type: 'keyword' },
  updated_at: { type: 'date' },
};
await es.indices.create({ index, body: { mappings: { dynamic: 'strict', properties } } }, { ignore: [400] }); // 400: exists (a restart)
await es.close();

const env = StreamEnvironment.create(environmentOptions(config, { log: print }));
const sink = elasticsearchSink({
  node,
  // The search view needs no 300-character notes or the shipping address.
  toAction: tableChangeAction<number, Order>(
    index,
    String,
    ({ id, customer_id, status, amount, currency, updated_at }) => ({
      id,
      customer_id,
      status,
      amount: Number(amount),
      currency,
      updated_at,
    }),
  ),
  deadLetters: { brokers: brokers.split(','), topic: dlqTopic },
  onFlush: (f) => print(`checkpoint ${f.checkpointId} flushed: ${f.documents} documents`),
});
ordersProjectionJob(env, projectionOptions(config), sink);
const { restarts } = await env.execute();
print(`finished: ${restarts} restarts`);
