/**
 * reconcile's non-Postgres sinks: an Elasticsearch index and a Redis key prefix, read as rows in
 * key order like a Postgres table, so the same merge join compares them with the source table.
 *
 * Elasticsearch: documents sorted by a numeric key field (default `id`) with `search_after`, one
 * page in memory. Redis: `<prefix>:<id>` keys holding a row's JSON (redisSink's default mapping);
 * Redis cannot list keys in order, so the key names (not the values) are collected with SCAN and
 * sorted first: memory grows with the key count (about 50 bytes a key), values are read in chunks.
 */
import { Client } from '@elastic/elasticsearch';
import { Redis } from 'ioredis';
import type { ReconcileRow } from './compare.ts';
import { ReconcileError } from './errors.ts';
import { compareKeys, type ColumnKind } from './normalize.ts';

/** One side that is not a Postgres table: its columns (when it knows them) and its rows in key order. */
export interface SinkReader {
  readonly description: string;
  /** Column → kind, or undefined when the sink has no schema (Redis): every source column is expected. */
  columnKinds(): Promise<ReadonlyMap<string, ColumnKind> | undefined>;
  rows(
    key: readonly string[],
    keyKinds: readonly ColumnKind[],
    columns: readonly string[],
    chunk: number,
  ): AsyncIterable<ReconcileRow>;
  close(): Promise<void>;
}

/** A JSON value as Postgres would print it, for normalisation: numbers and booleans as text, objects as JSON. */
export function jsonCell(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value);
}

function kindOfMapping(type: string | undefined): ColumnKind {
  switch (type) {
    case 'long':
    case 'integer':
    case 'short':
    case 'byte':
      return 'integer';
    case 'double':
    case 'float':
    case 'half_float':
    case 'scaled_float':
      return 'float';
    case 'date':
      return 'timestamp';
    case 'boolean':
      return 'bool';
    default:
      return 'text';
  }
}

export function elasticsearchReader(node: string, index: string): SinkReader {
  const es = new Client({ node });
  return {
    description: `${node} index ${index}`,
    async columnKinds() {
      const { body } = await es.indices.getMapping({ index }).catch((error: unknown) => {
        throw new ReconcileError(`reconcile: cannot read the mapping of index ${index} at ${node}: ${String(error)}`, {
          domain: 'external',
          retriable: true,
          cause: error,
        });
      });
      const mapping = (Object.values(
        body as Record<string, { mappings: { properties?: Record<string, { type?: string }> } }>,
      )[0]?.mappings.properties ?? {}) as Record<string, { type?: string }>;
      return new Map(Object.entries(mapping).map(([name, p]) => [name, kindOfMapping(p.type)]));
    },
    async *rows(key, _keyKinds, columns, chunk) {
      if (key.length !== 1)
        throw new ReconcileError(
          'reconcile: an Elasticsearch sink needs a single key column (a numeric document field)',
        );
      const field = key[0] as string;
      let after: unknown[] | undefined;
      for (;;) {
        const { body } = await es.search({
          index,
          body: {
            size: chunk,
            sort: [{ [field]: 'asc' }],
            _source: [field, ...columns],
            query: { match_all: {} },
            ...(after === undefined ? {} : { search_after: after }),
          },
        });
        const hits = (body as { hits: { hits: { _source: Record<string, unknown>; sort: unknown[] }[] } }).hits.hits;
        for (const hit of hits)
          yield { key: [jsonCell(hit._source[field]) ?? ''], values: columns.map((c) => jsonCell(hit._source[c])) };
        if (hits.length < chunk) return;
        after = hits[hits.length - 1]?.sort;
      }
    },
    async close() {
      await es.close();
    },
  };
}

export function redisReader(url: string, prefix: string): SinkReader {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  return {
    description: `${url} keys ${prefix}:*`,
    columnKinds: () => Promise.resolve(undefined),
    async *rows(key, keyKinds, columns, chunk) {
      if (key.length !== 1)
        throw new ReconcileError('reconcile: a Redis sink needs a single key column (keys are <prefix>:<key>)');
      await redis.connect().catch((error: unknown) => {
        throw new ReconcileError(`reconcile: cannot connect to ${url}: ${String(error)}`, {
          domain: 'external',
          retriable: true,
          cause: error,
        });
      });
      const ids: string[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        for (const k of keys) ids.push(k.slice(prefix.length + 1));
      } while (cursor !== '0');
      // Under an integer key, a key name that is no integer cannot be a row of the table: it is skipped.
      const usable = keyKinds[0] === 'integer' ? ids.filter((id) => /^-?\d+$/.test(id)) : ids;
      usable.sort((a, b) => compareKeys([a], [b], keyKinds));
      for (let i = 0; i < usable.length; i += chunk) {
        const slice = usable.slice(i, i + chunk);
        const values = await redis.mget(...slice.map((id) => `${prefix}:${id}`));
        for (let j = 0; j < slice.length; j++) {
          const raw = values[j];
          if (raw === null || raw === undefined) continue; // expired or deleted since the scan
          let row: Record<string, unknown>;
          try {
            row = JSON.parse(raw) as Record<string, unknown>;
          } catch {
            row = {};
          }
          yield { key: [slice[j] as string], values: columns.map((c) => jsonCell(row[c])) };
        }
      }
    },
    async close() {
      redis.disconnect();
    },
  };
}
