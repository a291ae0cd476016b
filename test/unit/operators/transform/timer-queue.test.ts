import { describe, expect, it } from 'vitest';
import { TimerQueue } from '../../../../operators/transform/timer-queue.ts';

describe('TimerQueue', () => {
  it('polls by timestamp, then key, whatever the insertion order, and queues each (timestamp, key) once', () => {
    const queue = new TimerQueue();
    const timers: [number, string][] = [
      [30, 'b'],
      [10, 'b'],
      [20, 'a'],
      [10, 'a'],
      [30, 'a'],
      [10, 'b'],
      [5, 'z'],
    ];
    for (const [timestamp, keyId] of timers) queue.add({ timestamp, keyId, key: keyId });
    expect(queue.size).toBe(6);
    const order: string[] = [];
    for (let timer = queue.poll(); timer !== undefined; timer = queue.poll())
      order.push(`${timer.timestamp}${timer.keyId}`);
    expect(order).toEqual(['5z', '10a', '10b', '20a', '30a', '30b']);
    queue.add({ timestamp: 10, keyId: 'a', key: 'a' }); // polled timers may be queued again
    expect(queue.peek()?.timestamp).toBe(10);
  });

  it('stays ordered under many random inserts', () => {
    const queue = new TimerQueue();
    let seed = 7;
    for (let i = 0; i < 2000; i++) {
      seed = (seed * 48_271) % 2_147_483_647;
      queue.add({ timestamp: seed % 500, keyId: String(seed % 13), key: undefined });
    }
    let previous = -1;
    for (let timer = queue.poll(); timer !== undefined; timer = queue.poll()) {
      expect(timer.timestamp).toBeGreaterThanOrEqual(previous);
      previous = timer.timestamp;
    }
  });
});
