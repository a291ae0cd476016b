import { describe, expect, it } from 'vitest';
import { FetchBuffer } from '../../../../../operators/sources/kafka/fetch-buffer.ts';

describe('FetchBuffer', () => {
  it('holds a put back while full, stays within the bound plus one item, and reports every change', async () => {
    const changes: number[] = [];
    const buffer = new FetchBuffer<string>(100, (bytes) => changes.push(bytes));
    await buffer.put('a', 60);
    let secondDone = false;
    const second = buffer.put('b', 70).then(() => (secondDone = true));
    await Promise.resolve();
    expect(buffer.bufferedBytes).toBe(130);
    expect(secondDone).toBe(false);

    expect(await buffer.take(0)).toBe('a');
    await second;
    expect(secondDone).toBe(true);
    expect(await buffer.take(0)).toBe('b');
    expect(await buffer.take(0)).toBeUndefined();
    expect(changes).toEqual([60, 130, 70, 0]);
  });

  it('wakes a waiting take when data arrives and clear releases a held put', async () => {
    const buffer = new FetchBuffer<number>(10);
    const taken = buffer.take(5_000);
    await buffer.put(1, 1);
    expect(await taken).toBe(1);
    const held = buffer.put(2, 50);
    buffer.clear();
    await held;
    expect(buffer.size).toBe(0);
  });

  it('counts as full while its oldest item has waited maxAgeMs, whatever the bytes (bound in time)', async () => {
    let now = 0;
    const buffer = new FetchBuffer<string>(1_000_000, () => undefined, 1000, () => now);
    await buffer.put('a', 10);
    now = 400;
    await buffer.put('b', 10); // the head has waited 400 ms: room
    now = 1000;
    let cDone = false;
    const c = buffer.put('c', 10).then(() => (cDone = true));
    await Promise.resolve();
    expect(buffer.full).toBe(true);
    expect(cDone).toBe(false); // 'a' waited 1 s: no further fetch
    expect(await buffer.take(0)).toBe('a'); // 'b' has waited 600 ms: room again
    await c;
    expect(cDone).toBe(true);
    expect(buffer.size).toBe(2);
  });
});
