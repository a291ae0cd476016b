/**
 * The real targets the sink contract runs against: each gives a fresh scope (table, topic, key
 * prefix, index, folder) and reads it back the way a user of that system would.
 */
import { Client as ElasticsearchClient } from '@elastic/elasticsearch';
import { Redis } from 'ioredis';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { tableChangeAction } from '../../operators/sinks/elasticsearch/document-action.ts';
import { elasticsearchSink } from '../../operators/sinks/elasticsearch/elasticsearch-sink.ts';
import { kafkaSink } from '../../operators/sinks/kafka/kafka-sink.ts';
import { postgresSink } from '../../operators/sinks/postgres/postgres-sink.ts';
import { redisSink } from '../../operators/sinks/redis/redis-sink.ts';
import { jsonLinesSink, readJsonLines } from '../support/json-lines-sink.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import type { ContractChange, ContractRow, ScopedTarget, SinkTarget } from './sink-contract.ts';

const label = (c: ContractChange) => `${c.key}:${c.kind === 'upsert' ? c.row.status : 'deleted'}`;
const quiet = { log: () => undefined };

export function postgresTarget(): SinkTarget {
  const url = testEndpoints().databaseUrl;
  const client = new pg.Client({ connectionString: url });
  let connected: Promise<unknown> | undefined;
  const db = async () => {
    connected ??= client.connect();
    await connected;
    return client;
  };
  return {
    name: 'postgres (two-phase)',
    fencesOwnerEpoch: true,
    visibility: 'on-commit',
    async scope(job) {
      const table = uniqueName('contract').replace(/-/g, '_');
      const c = await db();
      await c.query(`create table ${table} (id bigint primary key, status text)`);
      const prepared = async () =>
        (
          await c.query<{ gid: string }>('select gid from pg_prepared_xacts where left(gid, length($1)) = $1', [
            `${job}:`,
          ])
        ).rows.map((r) => r.gid);
      return {
        sink: postgresSink<number, ContractRow>({
          table,
          primaryKey: ['id'],
          connectionString: url,
          lockTimeoutMs: 5_000,
          ...quiet,
        }),
        visible: async () =>
          (await c.query<{ id: string; status: string }>(`select id, status from ${table}`)).rows.map(
            (r) => `${r.id}:${r.status}`,
          ),
        leftovers: async () => (await prepared()).length,
        cleanup: async () => {
          for (const gid of await prepared()) await c.query(`rollback prepared '${gid}'`);
          await c.query(`drop table if exists ${table}`);
        },
      } satisfies ScopedTarget;
    },
    close: async () => {
      if (connected !== undefined) await client.end();
    },
  };
}

export function kafkaTarget(): SinkTarget {
  const brokers = testEndpoints().kafkaBrokers.split(',');
  const kafka = new Kafka({ clientId: uniqueName('contract'), brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  let connected: Promise<void> | undefined;
  return {
    name: 'kafka (transactions)',
    visibility: 'on-commit',
    async scope() {
      connected ??= admin.connect();
      await connected;
      const topic = uniqueName('contract-out');
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
      // One read_committed reader per scope, joined once: what it has read is what is visible.
      const seen: string[] = [];
      let lastArrival = Date.now();
      const consumer: Consumer = kafka.consumer({
        groupId: uniqueName('contract-reader'),
        readUncommitted: false,
        maxWaitTimeInMs: 100,
      });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      let assigned = false;
      consumer.on(consumer.events.GROUP_JOIN, () => {
        assigned = true;
      });
      await consumer.run({
        eachMessage: ({ message }) => {
          seen.push(message.value?.toString() ?? '<tombstone>');
          lastArrival = Date.now();
          return Promise.resolve();
        },
      });
      const deadline = Date.now() + 30_000;
      while (!assigned && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      return {
        sink: kafkaSink<ContractChange>(
          { brokers, topic, serialize: (c) => ({ key: String(c.key), value: label(c) }), maxTransactionSlots: 3 },
          { commitAttempts: 3, initialBackoffMs: 50 },
        ),
        // Visible = what the reader has received once the partition is quiet; a committed transaction arrives within a fetch.
        visible: async () => {
          const started = Date.now();
          while (Date.now() - Math.max(lastArrival, started) < 1_000) await new Promise((r) => setTimeout(r, 100));
          return [...seen];
        },
        leftovers: () => Promise.resolve(0),
        cleanup: async () => {
          await consumer.disconnect();
          await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
        },
      } satisfies ScopedTarget;
    },
    close: async () => {
      if (connected !== undefined) await admin.disconnect();
    },
  };
}

export function redisTarget(): SinkTarget {
  const url = testEndpoints().redisUrl;
  const redis = new Redis(url, { maxRetriesPerRequest: 2, lazyConnect: true });
  return {
    name: 'redis (staged batches, fenced)',
    visibility: 'on-commit',
    fencesOwnerEpoch: true,
    async scope() {
      const prefix = uniqueName('contract');
      const dataKeys = async () => (await redis.keys(`${prefix}:*`)).filter((k) => !k.includes(':__cdcflow:'));
      return {
        sink: redisSink<number, ContractRow>({ url, prefix, ...quiet }),
        visible: async () => {
          const keys = await dataKeys();
          if (keys.length === 0) return [];
          const values = await redis.mget(...keys);
          return values
            .filter((v): v is string => v !== null)
            .map((v) => {
              const row = JSON.parse(v) as ContractRow;
              return `${row.id}:${row.status}`;
            });
        },
        // A staged batch left behind is a sorted-set entry under the sink's internal keys.
        leftovers: async () => {
          let staged = 0;
          for (const key of await redis.keys(`${prefix}:__cdcflow:*:staged`)) staged += await redis.zcard(key);
          return staged;
        },
        cleanup: async () => {
          const keys = await redis.keys(`${prefix}*`);
          if (keys.length > 0) await redis.del(...keys);
        },
      } satisfies ScopedTarget;
    },
    close: async () => {
      await redis.quit().catch(() => undefined);
    },
  };
}

export function elasticsearchTarget(): SinkTarget {
  const node = testEndpoints().elasticsearchUrl;
  const es = new ElasticsearchClient({ node });
  return {
    name: 'elasticsearch (idempotent, external versions)',
    visibility: 'on-write',
    fencesOwnerEpoch: true,
    async scope() {
      const index = uniqueName('contract');
      return {
        sink: elasticsearchSink<ContractChange>({
          node,
          toAction: tableChangeAction(index),
          refresh: true,
          initialBackoffMs: 10,
        }),
        visible: async () => {
          const { body, statusCode } = await es.search(
            { index, size: 1000, body: { query: { match_all: {} } } },
            { ignore: [404] },
          );
          if (statusCode === 404) return [];
          const hits = (body as { hits: { hits: { _source: ContractRow }[] } }).hits.hits;
          return hits.map((h) => `${h._source.id}:${h._source.status}`);
        },
        leftovers: () => Promise.resolve(0),
        cleanup: async () => {
          await es.indices.delete({ index }, { ignore: [404] });
        },
      } satisfies ScopedTarget;
    },
    close: async () => {
      await es.close();
    },
  };
}

/** The test suite's own two-phase sink (renames staged files): the contract's reference implementation. */
export function jsonLinesTarget(): SinkTarget {
  return {
    name: 'json-lines (staged files)',
    visibility: 'on-commit',
    scope() {
      const dir = mkdtempSync(join(tmpdir(), 'cdcflow-contract-'));
      const staged = () =>
        readdirSync(dir)
          .flatMap((sub) => readdirSync(join(dir, sub)))
          .filter((f) => f.startsWith('staged-')).length;
      return Promise.resolve({
        sink: jsonLinesSink<ContractChange>(dir, 'contract'),
        visible: () => Promise.resolve(readJsonLines<ContractChange>(dir, 'contract').map(label)),
        leftovers: () => Promise.resolve(staged()),
        cleanup: () => {
          rmSync(dir, { recursive: true, force: true });
          return Promise.resolve();
        },
      } satisfies ScopedTarget);
    },
  };
}
