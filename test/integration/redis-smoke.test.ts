import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';

describe('redis (real server)', () => {
  let redis: Redis;
  const prefix = uniqueName('smoke');

  beforeAll(() => {
    redis = new Redis(testEndpoints().redisUrl, { lazyConnect: false, maxRetriesPerRequest: 2 });
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('applies a MULTI/EXEC batch as one unit', async () => {
    const results = await redis.multi().set(`${prefix}:a`, '1').set(`${prefix}:b`, '2').incr(`${prefix}:n`).exec();
    expect(results?.map(([error]) => error)).toEqual([null, null, null]);
    expect(await redis.mget(`${prefix}:a`, `${prefix}:b`, `${prefix}:n`)).toEqual(['1', '2', '1']);
  });

  it('aborts EXEC when a WATCHed fence key changed, so a stale writer cannot apply its batch', async () => {
    const fence = `${prefix}:fence`;
    await redis.set(fence, '1');
    await redis.watch(fence);
    const rival = new Redis(testEndpoints().redisUrl);
    await rival.set(fence, '2');
    await rival.quit();
    const results = await redis.multi().set(`${prefix}:stale`, 'x').exec();
    expect(results).toBeNull();
    expect(await redis.exists(`${prefix}:stale`)).toBe(0);
  });
});
