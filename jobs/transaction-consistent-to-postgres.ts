/**
 * Transaction-consistent output into Postgres: a source transaction's changes become visible
 * together, never split across two sink commits (docs/debezium-values.md: costs). Reads the change
 * topic and the connector's transaction-metadata topic (`provide.transaction.metadata=true`).
 *   cdcflow run jobs/transaction-consistent-to-postgres.ts --set topic=<prefix>.public.orders --set txTopic=<prefix>.transaction
 * Settings: as jobs/orders-projection.ts, plus txTopic (CDCFLOW_TX_TOPIC) and table (CDCFLOW_PG_TABLE;
 * the target table must exist).
 */
import { z } from 'zod';
import {
  StreamEnvironment,
  debeziumSource,
  debeziumTransactionSource,
  environmentOptions,
  loadJobConfig,
  postgresSink,
  transactionConsistent,
  type TransactionInput,
} from '../runtime/index.ts';
import { projectionOptions, projectionSettings, type Order } from './orders-projection.ts';

const config = loadJobConfig({
  name: 'transaction-consistent-to-postgres',
  settings: projectionSettings.extend({
    txTopic: z.string().min(1).meta({ env: 'CDCFLOW_TX_TOPIC' }).default('cdc.transaction'),
    table: z.string().min(1).meta({ env: 'CDCFLOW_PG_TABLE' }).default('orders_projection'),
  }),
});
const { topic, groupId, bounded: isBounded, decimals, truncate } = projectionOptions(config);
const bounded = isBounded ? { bounded: 'latest' as const } : {};
const env = StreamEnvironment.create(environmentOptions(config));
const markers = env
  .fromSource(debeziumTransactionSource({ topics: [config.settings.txTopic], groupId: `${groupId}-tx`, ...bounded }), {
    uid: 'tx-source',
  })
  .map((marker): TransactionInput<Order> => ({ kind: 'marker', marker }));
env
  .fromSource(
    debeziumSource<Order>({ topics: [topic], groupId, ...bounded, ...(decimals === undefined ? {} : { decimals }) }),
    { uid: 'source' },
  )
  .map((event): TransactionInput<Order> => ({ kind: 'change', event }))
  .union(markers)
  .transform('transaction-consistent', () => transactionConsistent<Order>())
  .uid('transaction-consistent')
  .keyBy((event) => event.key?.['id'] as number)
  .upsert(truncate === undefined ? {} : { truncate })
  .uid('upsert')
  .sinkTo(postgresSink<number, Order>({ table: config.settings.table, primaryKey: ['id'] }));
await env.execute();
