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

  it('bounds its bytes by what processing takes in maxDrainMs (bound in time), between minBytes and maxBytes', async () => {
    let now = 0;
    const buffer = new FetchBuffer<number>(
      10_000,
      () => undefined,
      1000,
      100,
      () => now,
    );
    expect(buffer.boundBytes).toBe(100); // nothing measured yet: minBytes
    for (let i = 0; i < 10; i++) {
      await buffer.put(i, 50);
      now += 100;
      await buffer.take(0); // 50 bytes every 100 ms: 500 bytes/s
    }
    expect(buffer.boundBytes).toBe(500); // 1 s of what was taken
    let held = false;
    const fill = async () => {
      for (let i = 0; i < 10; i++) await buffer.put(i, 100);
      held = true;
    };
    const filling = fill();
    await new Promise((resolve) => setImmediate(resolve));
    expect(held).toBe(false);
    expect(buffer.bufferedBytes).toBe(500); // held back at the bound, not at maxBytes
    while (!held) {
      now += 100;
      await buffer.take(0);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await filling;
  });
});
