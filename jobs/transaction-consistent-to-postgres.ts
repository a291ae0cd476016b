/**
 * Transaction-consistent output into Postgres: a source transaction's changes become visible
 * together, never split across two sink commits (docs/debezium-values.md: costs). Reads the change
 * topic and the connector's transaction-metadata topic (`provide.transaction.metadata=true`).
 *   CDCFLOW_TOPIC=<prefix>.public.orders CDCFLOW_TX_TOPIC=<prefix>.transaction CDCFLOW_BOUNDED=1 npx tsx jobs/transaction-consistent-to-postgres.ts
 * Env: as jobs/orders-to-postgres.ts (the target table must exist); CDCFLOW_DECIMAL_HANDLING as jobs/orders-projection.ts.
 */
import { StreamEnvironment, debeziumSource, debeziumTransactionSource, postgresSink, transactionConsistent, type TransactionInput } from '../runtime/index.ts';
import { valueOptionsFromEnv, type Order } from './orders-projection.ts';

const e = process.env;
const [topic, txTopic, groupId] = [e['CDCFLOW_TOPIC'] ?? 'cdc.ecommerce.orders', e['CDCFLOW_TX_TOPIC'] ?? 'cdc.transaction', e['CDCFLOW_GROUP_ID'] ?? 'transaction-consistent'];
const bounded = e['CDCFLOW_BOUNDED'] === '1' ? { bounded: 'latest' as const } : {};
const { decimals, truncate } = valueOptionsFromEnv(e);
const env = StreamEnvironment.create({
  jobName: e['CDCFLOW_JOB_NAME'] ?? 'transaction-consistent-to-postgres',
  checkpoints: { intervalMs: 1000, dir: e['CDCFLOW_CHECKPOINT_DIR'] ?? './.cdcflow/checkpoints' },
  state: { backend: 'rocksdb', dir: e['CDCFLOW_STATE_DIR'] ?? './.cdcflow/state' },
});
const markers = env.fromSource(debeziumTransactionSource({ topics: [txTopic], groupId: `${groupId}-tx`, ...bounded }), { uid: 'tx-source' }).map((marker): TransactionInput<Order> => ({ kind: 'marker', marker }));
env
  .fromSource(debeziumSource<Order>({ topics: [topic], groupId, ...bounded, ...(decimals === undefined ? {} : { decimals }) }), { uid: 'source' })
  .map((event): TransactionInput<Order> => ({ kind: 'change', event }))
  .union(markers)
  .transform('transaction-consistent', () => transactionConsistent<Order>())
  .uid('transaction-consistent')
  .keyBy((event) => event.key?.['id'] as number)
  .upsert(truncate === undefined ? {} : { truncate })
  .uid('upsert')
  .sinkTo(postgresSink<number, Order>({ table: e['CDCFLOW_PG_TABLE'] ?? 'orders_projection', primaryKey: ['id'] }));
await env.execute();
