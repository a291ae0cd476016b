/**
 * A real Debezium connector left at its defaults (decimal.handling.mode=precise, JSON without
 * schemas) into Postgres, exactly once: NUMERIC columns decoded with the scale given here, a
 * TRUNCATE of the source empties the target too (docs/debezium-values.md).
 *   cdcflow run jobs/debezium-precise-to-postgres.ts --set topic=<prefix>.public.orders --set decimalColumns=amount=2
 * Settings: as jobs/orders-projection.ts, plus table (CDCFLOW_PG_TABLE; the target table must exist,
 * columns as the source's) and decimalColumns (CDCFLOW_DECIMAL_COLUMNS: EVERY NUMERIC column with its
 * scale, `amount=2,tax=4`).
 */
import { z } from 'zod';
import {
  StreamEnvironment,
  debeziumSource,
  environmentOptions,
  loadJobConfig,
  postgresSink,
} from '../runtime/index.ts';
import { projectionOptions, projectionSettings, type Order } from './orders-projection.ts';

const config = loadJobConfig({
  name: 'debezium-precise-to-postgres',
  settings: projectionSettings.extend({
    table: z.string().min(1).meta({ env: 'CDCFLOW_PG_TABLE' }).default('orders_projection'),
    decimalColumns: z
      .string()
      .regex(/^\w+=\d+(,\w+=\d+)*$/, 'must list column=scale pairs, e.g. amount=2,tax=4')
      .meta({ env: 'CDCFLOW_DECIMAL_COLUMNS' })
      .default('amount=2'),
  }),
});
const { topic, groupId, bounded } = projectionOptions(config);
const columns = Object.fromEntries(
  config.settings.decimalColumns
    .split(',')
    .map((c) => c.split('='))
    .map(([name = '', scale]) => [name, Number(scale)]),
);
const env = StreamEnvironment.create(environmentOptions(config));
env
  .fromSource(
    debeziumSource<Order>({
      topics: [topic],
      groupId,
      ...(bounded ? { bounded: 'latest' as const } : {}),
      decimals: { handling: 'precise', columns },
    }),
    { uid: 'source' },
  )
  .keyBy((event) => event.key?.['id'] as number)
  .upsert({ truncate: 'propagate' })
  .uid('upsert')
  .sinkTo(postgresSink<number, Order>({ table: config.settings.table, primaryKey: ['id'] }));
await env.execute();
