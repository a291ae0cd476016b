/**
 * The sinks of the sinks benchmark, each as the reference projection writes it (jobs/orders-to-*.ts):
 * where it writes (a table, topic, key prefix or index of its own per run), the sink definition
 * the job uses, how to create and drop the target, and a probe that tells which order ids are
 * visible in it right now — to a reader, not to the job.
 */
import { Client as EsClient } from '@elastic/elasticsearch';
import { Redis } from 'ioredis';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { kafkaClientConfig, resolveKafkaConnection } from '../../operators/kafka-connection.ts';
import pg from 'pg';
import type { Order } from '../../jobs/orders-projection.ts';
import {
  elasticsearchSink,
  kafkaSink,
  postgresSink,
  redisSink,
  tableChangeAction,
  tableChangeMessage,
  type SinkDefinition,
  type TableChange,
} from '../../runtime/index.ts';
import type { ServiceEndpoints } from '../stack/endpoints.ts';
import { PROBE_ID_BASE } from '../workload/paced-producer.ts';

export const SINK_KINDS = ['pg', 'pg-idem', 'kafka', 'redis', 'es'] as const;
export type SinkKind = (typeof SINK_KINDS)[number];

export const SINK_LABELS: Readonly<Record<SinkKind, string>> = {
  pg: 'Postgres two-phase',
  'pg-idem': 'Postgres idempotent',
  kafka: 'Kafka transactional',
  redis: 'Redis fenced batch',
  es: 'Elasticsearch',
};

/** JSON: handed to the benchmark child that runs the job. */
export interface TargetSpec {
  readonly kind: SinkKind;
  /** Table, topic, key prefix or index: unique per run. */
  readonly name: string;
  readonly endpoints: ServiceEndpoints;
}

export function targetSpec(kind: SinkKind, tag: string, endpoints: ServiceEndpoints): TargetSpec {
  const name =
    kind === 'pg' || kind === 'pg-idem' ? `bench_sinks_${tag.replace(/[^a-z0-9]/g, '_')}` : `bench-sinks-${tag}`;
  return { kind, name, endpoints };
}

type Change = TableChange<number, Order>;

export function sinkFor(spec: TargetSpec): SinkDefinition<Change> {
  const { endpoints: e, name } = spec;
  switch (spec.kind) {
    case 'pg':
    case 'pg-idem':
      return postgresSink<number, Order>({
        connectionString: e.databaseUrl,
        table: name,
        primaryKey: ['id'],
        mode: spec.kind === 'pg' ? 'two-phase' : 'idempotent',
        log: () => undefined,
      });
    case 'kafka':
      return kafkaSink({
        brokers: e.kafkaBrokers.split(','),
        topic: name,
        serialize: tableChangeMessage<number, Order>((id) => ({ id })),
      });
    case 'redis':
      return redisSink<number, Order>({ url: e.redisUrl, prefix: name, log: () => undefined });
    case 'es':
      return elasticsearchSink({ node: e.elasticsearchUrl, toAction: tableChangeAction<number, Order>(name, String) });
  }
}

const ORDER_COLUMNS =
  'id bigint PRIMARY KEY, customer_id bigint, status text, amount numeric(12,2), currency char(3), shipping_address text, notes text, created_at timestamptz, updated_at timestamptz';

async function withPg<R>(url: string, use: (client: pg.Client) => Promise<R>): Promise<R> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

const kafkaOf = (spec: TargetSpec) =>
  new Kafka(
    kafkaClientConfig(resolveKafkaConnection({ brokers: spec.endpoints.kafkaBrokers.split(',') }), {
      clientId: 'cdcflow-sinks-bench',
      logLevel: logLevel.NOTHING,
    }),
  );

export async function createTarget(spec: TargetSpec): Promise<void> {
  const { kind, name, endpoints } = spec;
  if (kind === 'pg' || kind === 'pg-idem') {
    const extra = kind === 'pg-idem' ? ', position text, deleted boolean NOT NULL DEFAULT false' : '';
    await withPg(endpoints.databaseUrl, (c) => c.query(`CREATE TABLE ${name} (${ORDER_COLUMNS}${extra})`));
  } else if (kind === 'kafka') {
    await createTopic(spec, name, 6);
  } else if (kind === 'es') {
    const es = new EsClient({ node: endpoints.elasticsearchUrl });
    await es.indices.create({ index: name, body: { settings: { number_of_shards: 1, number_of_replicas: 0 } } });
    await es.close();
  }
}

/** The consumer group of the job's source. */
export const sourceGroupOf = (jobName: string): string => `${jobName}-group`;

/** Removes what the run wrote, including what a stopped job left prepared or staged, and the job's consumer group. */
export async function dropTarget(spec: TargetSpec, jobName: string): Promise<void> {
  const { kind, name, endpoints } = spec;
  const admin = kafkaOf(spec).admin();
  await admin.connect();
  await admin
    .deleteGroups([sourceGroupOf(jobName), ...(kind === 'kafka' ? [`${name}-probe`] : [])])
    .catch(() => undefined);
  await admin.disconnect();
  if (kind === 'pg' || kind === 'pg-idem') {
    await withPg(endpoints.databaseUrl, async (c) => {
      const { rows } = await c.query<{ gid: string }>(
        'SELECT gid FROM pg_prepared_xacts WHERE left(gid, length($1)) = $1',
        [`${jobName}:`],
      );
      for (const { gid } of rows) await c.query(`ROLLBACK PREPARED '${gid.replace(/'/g, "''")}'`);
      await c.query(`DROP TABLE IF EXISTS ${name}`);
      await c
        .query('DELETE FROM cdcflow_sink_commits WHERE left(sink, length($1)) = $1', [`${jobName}:`])
        .catch(() => undefined);
    });
  } else if (kind === 'kafka') {
    await deleteTopics(spec, [name]);
  } else if (kind === 'redis') {
    const redis = new Redis(endpoints.redisUrl);
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${name}:*`, 'COUNT', 5000);
      if (keys.length > 0) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
    await redis.quit();
  } else {
    const es = new EsClient({ node: endpoints.elasticsearchUrl });
    await es.indices.delete({ index: name }, { ignore: [404] });
    await es.close();
  }
}

export async function createTopic(
  spec: Pick<TargetSpec, 'endpoints'>,
  topic: string,
  partitions: number,
): Promise<void> {
  const admin = kafkaOf(spec as TargetSpec).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  await admin.disconnect();
}

export async function deleteTopics(spec: Pick<TargetSpec, 'endpoints'>, topics: readonly string[]): Promise<void> {
  const admin = kafkaOf(spec as TargetSpec).admin();
  await admin.connect();
  const existing = new Set(await admin.listTopics());
  const mine = topics.filter((t) => existing.has(t));
  if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  await admin.disconnect();
}

/** Which of some order ids a reader of the sink sees now. */
export interface SinkProbe {
  /** The visible ones, with when they were seen (epoch ms). */
  visible(ids: readonly number[]): Promise<Map<number, number>>;
  close(): Promise<void>;
}

/** A probe of the target. For Kafka it is a read_committed consumer, started (and joined) here. */
export async function openProbe(spec: TargetSpec): Promise<SinkProbe> {
  const { kind, name, endpoints } = spec;
  // A polled row was visible by the time the query was sent at the latest (the error is one poll interval).
  const seenAt = (ids: readonly number[], sentAt: number) => new Map(ids.map((id) => [id, sentAt]));
  if (kind === 'pg' || kind === 'pg-idem') {
    const client = new pg.Client({ connectionString: endpoints.databaseUrl });
    await client.connect();
    const live = kind === 'pg-idem' ? ' AND NOT deleted' : '';
    return {
      async visible(ids) {
        const sentAt = Date.now();
        const { rows } = await client.query<{ id: string }>(
          `SELECT id FROM ${name} WHERE id = ANY($1::bigint[])${live}`,
          [ids],
        );
        return seenAt(
          rows.map((r) => Number(r.id)),
          sentAt,
        );
      },
      close: () => client.end(),
    };
  }
  if (kind === 'redis') {
    const redis = new Redis(endpoints.redisUrl);
    return {
      async visible(ids) {
        const sentAt = Date.now();
        const values = await redis.mget(...ids.map((id) => `${name}:${id}`));
        return seenAt(
          ids.filter((_, i) => values[i] !== null),
          sentAt,
        );
      },
      close: async () => void (await redis.quit()),
    };
  }
  if (kind === 'es') {
    const es = new EsClient({ node: endpoints.elasticsearchUrl });
    return {
      async visible(ids) {
        const sentAt = Date.now();
        // GET is realtime: it sees an acknowledged write before the index refreshes.
        const { body } = await es.mget({ index: name, body: { ids: ids.map(String) } });
        const docs = (body as { docs: { _id: string; found?: boolean }[] }).docs;
        return seenAt(
          docs.filter((d) => d.found === true).map((d) => Number(d._id)),
          sentAt,
        );
      },
      close: () => es.close(),
    };
  }
  return kafkaProbe(spec);
}

async function kafkaProbe(spec: TargetSpec): Promise<SinkProbe> {
  const seen = new Map<number, number>();
  const consumer: Consumer = kafkaOf(spec).consumer({ groupId: `${spec.name}-probe`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic: spec.name, fromBeginning: true });
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const now = Date.now();
      for (const m of batch.messages) {
        const id = m.key === null ? NaN : (JSON.parse(m.key.toString()) as { id: number }).id;
        if (id >= PROBE_ID_BASE) seen.set(id, now);
      }
      await Promise.resolve();
    },
  });
  await Promise.race([joined, new Promise((r) => setTimeout(r, 30_000))]);
  return {
    visible: (ids) =>
      Promise.resolve(new Map(ids.flatMap((id) => (seen.has(id) ? [[id, seen.get(id) as number] as const] : [])))),
    close: () => consumer.disconnect(),
  };
}
