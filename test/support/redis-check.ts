/**
 * What the Redis sink chaos tests read and compare: the keys under a run's prefix — data keys
 * (`<prefix>:<id>`, the row's JSON) against an expected table, the fence key of each sink
 * instance (last applied checkpoint) and any staged batch left behind.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Redis } from 'ioredis';

/** Every key matching `match` (SCAN, bounded). */
export async function scanKeys(redis: Redis, match: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  for (let i = 0; i < 1_000_000; i++) {
    const [next, batch] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1_000);
    keys.push(...batch);
    cursor = next;
    if (cursor === '0') break;
  }
  return keys;
}

export interface RedisView {
  /** Data keys by id: the parsed value and its PTTL. */
  readonly rows: Map<number, { readonly row: unknown; readonly pttl: number }>;
  /** Fence keys (one per sink instance) → the checkpoint id they hold. */
  readonly fences: Map<string, number>;
  /** Staged batches and staged-index keys still present. */
  readonly staged: string[];
}

/** The keys under `prefix`: data keys (with PTTL when `withTtl`), fence keys, staged batches. */
export async function readRedisView(redis: Redis, prefix: string, withTtl: boolean): Promise<RedisView> {
  const keys = await scanKeys(redis, `${prefix}:*`);
  const internal = keys.filter((k) => k.startsWith(`${prefix}:__cdcflow:`));
  const data = keys.filter((k) => !k.startsWith(`${prefix}:__cdcflow:`));
  const rows = new Map<number, { row: unknown; pttl: number }>();
  for (let i = 0; i < data.length; i += 1_000) {
    const chunk = data.slice(i, i + 1_000);
    const values = await redis.mget(...chunk);
    const ttls = withTtl
      ? ((await redis.pipeline(chunk.map((k) => ['pttl', k])).exec()) ?? []).map(([, v]) => Number(v))
      : [];
    chunk.forEach((key, j) => {
      const value = values[j];
      if (value !== null && value !== undefined)
        rows.set(Number(key.slice(prefix.length + 1)), { row: JSON.parse(value), pttl: ttls[j] ?? -1 });
    });
  }
  const fences = new Map<string, number>();
  for (const key of internal.filter((k) => k.endsWith(':applied'))) fences.set(key, Number(await redis.get(key)));
  return { rows, fences, staged: internal.filter((k) => !k.endsWith(':applied')) };
}

/** Ids whose Redis value differs from `want` (at most 20), plus how many. */
export function redisDifferences(
  rows: RedisView['rows'],
  want: Map<number, unknown>,
): { lost: number[]; extra: number[]; stale: number[] } {
  const lost = [...want.keys()].filter((id) => !rows.has(id));
  const extra = [...rows.keys()].filter((id) => !want.has(id));
  const stale = [...want]
    .filter(([id, row]) => rows.has(id) && !isDeepStrictEqual(rows.get(id)?.row, row))
    .map(([id]) => id);
  return { lost, extra, stale };
}
