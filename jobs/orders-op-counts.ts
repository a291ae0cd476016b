/**
 * Counts Debezium change events by operation (r/c/u/d) with keyed state — the first job of the
 * demo. Run it directly to count what is on the topic now:
 *   KAFKA_BROKERS=127.0.0.1:19092 cdcflow run jobs/orders-op-counts.ts
 */
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import {
  StreamEnvironment,
  debeziumSource,
  environmentOptions,
  loadJobConfig,
  valueState,
  type Output,
  type SinkDefinition,
} from '../runtime/index.ts';

export interface OpCount {
  readonly op: string;
  readonly count: number;
}

export function opCountsJob(
  env: StreamEnvironment,
  topic: string,
  groupId: string,
  sink: SinkDefinition<OpCount>,
): void {
  env
    .fromSource(debeziumSource({ topics: [topic], groupId, bounded: 'latest' }), { uid: 'orders-source' })
    .keyBy((event) => event.op)
    .process({
      state: { count: valueState<number>() },
      processElement(_event, ctx, out: Output<OpCount>) {
        const next = (ctx.state.count.value() ?? 0) + 1;
        ctx.state.count.update(next);
        out.emit({ op: ctx.key, count: next });
      },
    })
    .uid('count-by-op')
    .sinkTo(sink);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const latest = new Map<string, number>();
  const config = loadJobConfig({
    name: 'orders-op-counts',
    settings: z.object({ topic: z.string().meta({ env: 'CDCFLOW_TOPIC' }).default('cdc.ecommerce.orders') }),
  });
  // A count of what is on the topic now: always from the start, in a group of its own.
  const env = StreamEnvironment.create(environmentOptions(config, { restore: 'none' }));
  opCountsJob(env, config.settings.topic, `orders-op-counts-${Date.now()}`, {
    name: 'latest-counts',
    createOperator: () => ({ processBatch: (batch) => batch.forEach((r) => latest.set(r.value.op, r.value.count)) }),
  });
  await env.execute();
  console.table(Object.fromEntries(latest));
}
