/**
 * The orders projection (latest row per id, LSN-deduplicated) written exactly once to a compacted
 * Kafka topic: one Kafka transaction per checkpoint, a delete as a tombstone. Consumers reading
 * with isolation.level=read_committed see each change once, after its checkpoint completes.
 *   KAFKA_BROKERS=127.0.0.1:19092 npx tsx jobs/orders-to-kafka.ts
 */
import { pathToFileURL } from 'node:url';
import { StreamEnvironment, debeziumSource, kafkaSink, tableChangeMessage, type DebeziumSourceOptions } from '../runtime/index.ts';

export interface Order {
  readonly id: number;
  readonly status: string;
  readonly amount: string;
}

export interface OrdersToKafkaOptions {
  readonly brokers: readonly string[];
  readonly sourceTopic: string;
  readonly groupId: string;
  /** Create it with cleanup.policy=compact: only the latest row per id needs keeping. */
  readonly targetTopic: string;
  readonly bounded?: DebeziumSourceOptions['bounded'];
}

export function ordersToKafkaJob(env: StreamEnvironment, options: OrdersToKafkaOptions): void {
  env
    .fromSource(
      debeziumSource<Order>({ topics: [options.sourceTopic], groupId: options.groupId, brokers: options.brokers, ...(options.bounded ? { bounded: options.bounded } : {}) }),
      { uid: 'orders-source' },
    )
    .keyBy((event) => Number(event.key?.['id']))
    .upsert()
    .uid('orders-latest')
    .sinkTo(kafkaSink({ brokers: options.brokers, topic: options.targetTopic, serialize: tableChangeMessage<number, Order>((id) => ({ id })) }))
    .uid('orders-latest-kafka');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const brokers = (process.env['KAFKA_BROKERS'] ?? '127.0.0.1:19092').split(',');
  const env = StreamEnvironment.create({ jobName: 'orders-to-kafka', checkpoints: { intervalMs: 1000 } });
  ordersToKafkaJob(env, { brokers, sourceTopic: 'cdc.ecommerce.orders', groupId: 'orders-to-kafka', targetTopic: 'orders.latest', bounded: 'latest' });
  const result = await env.execute();
  console.log(`orders-to-kafka finished after ${result.restarts} restarts`);
}
