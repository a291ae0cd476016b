/**
 * The orders projection indexed in Elasticsearch, idempotently: each document's external version
 * is the LSN of the change that produced it, so a restore that replays changes cannot move a
 * document back. Documents the mapping refuses go to a dead-letter topic.
 *   KAFKA_BROKERS=127.0.0.1:19092 ELASTICSEARCH_URL=http://127.0.0.1:19200 npx tsx jobs/orders-to-elasticsearch.ts
 */
import { pathToFileURL } from 'node:url';
import { StreamEnvironment, debeziumSource, elasticsearchSink, tableChangeAction, type DebeziumSourceOptions } from '../runtime/index.ts';

export interface Order {
  readonly id: number;
  readonly customer_id: number;
  readonly status: string;
  readonly amount: string;
  readonly currency: string;
  readonly updated_at: string;
}

export interface OrdersToElasticsearchOptions {
  readonly brokers: readonly string[];
  readonly elasticsearchUrl: string;
  readonly sourceTopic: string;
  readonly groupId: string;
  readonly index: string;
  readonly deadLetterTopic: string;
  readonly bounded?: DebeziumSourceOptions['bounded'];
}

export function ordersToElasticsearchJob(env: StreamEnvironment, options: OrdersToElasticsearchOptions): void {
  env
    .fromSource(
      debeziumSource<Order>({ topics: [options.sourceTopic], groupId: options.groupId, brokers: options.brokers, ...(options.bounded ? { bounded: options.bounded } : {}) }),
      { uid: 'orders-source' },
    )
    .keyBy((event) => Number(event.key?.['id']))
    .upsert()
    .uid('orders-latest')
    .sinkTo(
      elasticsearchSink({
        node: options.elasticsearchUrl,
        // The search view needs no 300-character notes or the shipping address.
        toAction: tableChangeAction<number, Order>(options.index, String, ({ id, customer_id, status, amount, currency, updated_at }) => ({
          id,
          customer_id,
          status,
          amount: Number(amount),
          currency,
          updated_at,
        })),
        deadLetters: { brokers: options.brokers, topic: options.deadLetterTopic },
      }),
    )
    .uid('orders-latest-es');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const brokers = (process.env['KAFKA_BROKERS'] ?? '127.0.0.1:19092').split(',');
  const elasticsearchUrl = process.env['ELASTICSEARCH_URL'] ?? 'http://127.0.0.1:19200';
  const env = StreamEnvironment.create({ jobName: 'orders-to-elasticsearch', checkpoints: { intervalMs: 1000 } });
  ordersToElasticsearchJob(env, {
    brokers,
    elasticsearchUrl,
    sourceTopic: 'cdc.ecommerce.orders',
    groupId: 'orders-to-elasticsearch',
    index: 'orders',
    deadLetterTopic: 'orders.es.dlq',
    bounded: 'latest',
  });
  const result = await env.execute();
  console.log(`orders-to-elasticsearch finished after ${result.restarts} restarts`);
}
