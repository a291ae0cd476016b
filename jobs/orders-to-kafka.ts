/**
 * The orders projection (latest row per id, LSN-deduplicated) written exactly once to a compacted
 * Kafka topic: one Kafka transaction per checkpoint, a delete as a tombstone. Consumers reading
 * with isolation.level=read_committed see each change once, after its checkpoint completes.
 *   KAFKA_BROKERS=127.0.0.1:19092 npx tsx jobs/orders-to-kafka.ts
 * Env: KAFKA_BROKERS, CDCFLOW_TOPIC, CDCFLOW_GROUP_ID, CDCFLOW_TARGET_TOPIC (default orders.latest),
 * CDCFLOW_JOB_NAME, CDCFLOW_CHECKPOINT_DIR, CDCFLOW_STATE_DIR, CDCFLOW_SESSION_TIMEOUT_MS; it stops at the end offsets found at
 * start unless CDCFLOW_BOUNDED=0.
 */
import { pathToFileURL } from 'node:url';
import { StreamEnvironment, debeziumSource, kafkaSink, tableChangeMessage, type DebeziumSourceOptions, type SinkTransactionEvent } from '../runtime/index.ts';

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
  /** The source's consumer-group session timeout: how long a rejoin after a crash waits for the dead member. */
  readonly sessionTimeoutMs?: number;
  /** Progress lines: each transaction's pre-commit and commit. */
  readonly onTransaction?: (event: SinkTransactionEvent) => void;
}

export function ordersToKafkaJob(env: StreamEnvironment, options: OrdersToKafkaOptions): void {
  env
    .fromSource(
      debeziumSource<Order>({
        topics: [options.sourceTopic],
        groupId: options.groupId,
        brokers: options.brokers,
        ...(options.bounded ? { bounded: options.bounded } : {}),
        ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: options.sessionTimeoutMs }),
      }),
      { uid: 'orders-source' },
    )
    .keyBy((event) => Number(event.key?.['id']))
    .upsert()
    .uid('orders-latest')
    .sinkTo(kafkaSink({ brokers: options.brokers, topic: options.targetTopic, serialize: tableChangeMessage<number, Order>((id) => ({ id })), ...(options.onTransaction === undefined ? {} : { onTransaction: options.onTransaction }) }))
    .uid('orders-latest-kafka');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const e = process.env;
  const print = (line: string) => console.log(`[orders-to-kafka ${process.pid}] ${line}`);
  const env = StreamEnvironment.create({
    jobName: e['CDCFLOW_JOB_NAME'] ?? 'orders-to-kafka',
    checkpoints: { intervalMs: 1000, dir: e['CDCFLOW_CHECKPOINT_DIR'] ?? './.cdcflow/checkpoints' },
    state: { backend: 'rocksdb', dir: e['CDCFLOW_STATE_DIR'] ?? './.cdcflow/state' },
    log: print,
  });
  ordersToKafkaJob(env, {
    brokers: (e['KAFKA_BROKERS'] ?? '127.0.0.1:19092').split(','),
    sourceTopic: e['CDCFLOW_TOPIC'] ?? 'cdc.ecommerce.orders',
    groupId: e['CDCFLOW_GROUP_ID'] ?? 'orders-to-kafka',
    targetTopic: e['CDCFLOW_TARGET_TOPIC'] ?? 'orders.latest',
    ...(e['CDCFLOW_BOUNDED'] === '0' ? {} : { bounded: 'latest' as const }),
    ...(e['CDCFLOW_SESSION_TIMEOUT_MS'] === undefined ? {} : { sessionTimeoutMs: Number(e['CDCFLOW_SESSION_TIMEOUT_MS']) }),
    onTransaction: (t) => print(`checkpoint ${t.checkpointId} ${t.phase}: ${t.records} records`),
  });
  const result = await env.execute();
  print(`finished: ${result.restarts} restarts`);
}
