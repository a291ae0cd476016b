/**
 * Watermarks carried through an exchange (a repartition topic between group-mode stages): a split's
 * watermark is the minimum over the upstream origins seen on it, not its records' highest time
 * minus the bound; idle origins are left out, one that comes back counts once it has caught up,
 * and the origins survive a checkpoint.
 */
import { describe, expect, it } from 'vitest';
import { CarriedWatermarks } from '../../../../runtime/execution/carried-watermarks.ts';
import { WatermarkGenerator, type WatermarkSettings } from '../../../../runtime/execution/watermark-generator.ts';

const settings = (idlenessMs?: number): WatermarkSettings => ({
  outOfOrdernessMs: 5_000,
  timestampOf: undefined,
  idlenessMs,
});
const c = (origin: string, watermark: number) => ({ origin, watermark });

describe('CarriedWatermarks: the minimum over upstream origins', () => {
  it('takes the minimum; an origin never goes back when its records arrive out of order', () => {
    const split = new CarriedWatermarks();
    split.observe(c('up-0', 1_000), 0);
    split.observe(c('up-1', 90_000), 0);
    expect(split.value(0, undefined)).toBe(1_000);
    // up-0's later transaction commits first downstream: an older watermark behind it changes nothing.
    split.observe(c('up-0', 50_000), 1);
    split.observe(c('up-0', 20_000), 2);
    expect(split.value(2, undefined)).toBe(50_000);
    split.observe(c('up-1', 95_000), 3);
    split.observe(c('up-0', 99_000), 3);
    expect(split.value(3, undefined)).toBe(95_000);
  });

  it('an origin announced at −∞ (nothing read yet) holds the split back until it advances', () => {
    const split = new CarriedWatermarks();
    split.observe(c('up-0', Number.NEGATIVE_INFINITY), 0);
    split.observe(c('up-1', 600_000), 0);
    expect(split.value(0, 30_000)).toBe(Number.NEGATIVE_INFINITY);
    split.observe(c('up-0', 10_000), 1);
    expect(split.value(1, 30_000)).toBe(10_000);
  });

  it('told how many origins there are, holds back until it has seen them all (or idleness passed)', () => {
    const split = new CarriedWatermarks();
    // At a fresh start up-1's first commit arrives before up-0 announced itself.
    split.observe({ origin: 'up-1', watermark: 600_000, origins: 2 }, 0);
    expect(split.value(1_000, 30_000)).toBe(Number.NEGATIVE_INFINITY);
    split.observe({ origin: 'up-0', watermark: 5_000, origins: 2 }, 2_000);
    expect(split.value(2_000, 30_000)).toBe(5_000);
    // An upstream task that never shows up holds back only for the idleness timeout.
    const lonely = new CarriedWatermarks();
    lonely.observe({ origin: 'up-1', watermark: 600_000, origins: 2 }, 0);
    lonely.observe({ origin: 'up-1', watermark: 700_000, origins: 2 }, 29_000);
    expect(lonely.value(29_999, 30_000)).toBe(Number.NEGATIVE_INFINITY);
    expect(lonely.value(30_000, 30_000)).toBe(700_000);
  });

  it('leaves an idle origin out, and counts it again only once it has caught up', () => {
    const split = new CarriedWatermarks();
    split.observe(c('up-0', 10_000), 0);
    split.observe(c('up-1', 10_000), 0);
    expect(split.value(0, 30_000)).toBe(10_000);
    // up-0's owner died: nothing from it; up-1 moves on.
    split.observe(c('up-1', 200_000), 25_000);
    expect(split.value(25_000, 30_000)).toBe(10_000);
    expect(split.value(30_000, 30_000)).toBe(200_000);
    // up-0's new owner resumes from its restored watermark, behind: left out, the split does not go back.
    split.observe(c('up-0', 12_000), 31_000);
    split.observe(c('up-1', 300_000), 31_000);
    expect(split.value(31_000, 30_000)).toBe(300_000);
    // Caught up: it counts again and holds the split.
    split.observe(c('up-0', 305_000), 32_000);
    split.observe(c('up-1', 400_000), 32_000);
    expect(split.value(32_000, 30_000)).toBe(305_000);
  });

  it('is undefined (holds nothing back) when every origin is idle; without idleness never', () => {
    const split = new CarriedWatermarks();
    split.observe(c('up-0', 10_000), 0);
    expect(split.value(29_999, 30_000)).toBe(10_000);
    expect(split.value(30_000, 30_000)).toBeUndefined();
    expect(split.value(1_000_000, undefined)).toBeUndefined();
    const never = new CarriedWatermarks();
    never.observe(c('up-0', 10_000), 0);
    expect(never.value(1_000_000, undefined)).toBe(10_000);
  });

  it('restores its origins from the checkpoint (infinities as strings)', () => {
    const split = new CarriedWatermarks();
    split.observe(c('up-0', Number.NEGATIVE_INFINITY), 0);
    split.observe(c('up-1', 42_000), 0);
    const stored = split.stored('t:1');
    expect(JSON.parse(JSON.stringify(stored))).toEqual([
      { split: 't:1', origin: 'up-0', watermark: '-Infinity' },
      { split: 't:1', origin: 'up-1', watermark: 42_000 },
    ]);
    const again = new CarriedWatermarks();
    again.restore(stored, 100);
    expect(again.value(100, 30_000)).toBe(Number.NEGATIVE_INFINITY);
    again.observe(c('up-0', 50_000), 101);
    expect(again.value(101, 30_000)).toBe(42_000);
  });
});

describe('WatermarkGenerator with carried watermarks', () => {
  it("a carried split's watermark is its origins' minimum, not its records' time minus the bound", () => {
    const generator = new WatermarkGenerator(settings(30_000));
    generator.assign(['x:0', 'x:1'], 0);
    // Records far ahead in event time on x:0 (the fast upstream partition's) do not move x:0's watermark.
    generator.observe('x:0', 900_000);
    generator.carry('x:0', [c('up-0', 1_000), c('up-1', 800_000)], 1);
    expect(generator.afterBatch('x:0', 1)).toBeUndefined(); // x:1 has delivered nothing yet
    generator.carry('x:1', [c('up-1', 800_000), c('up-0', 2_000)], 2);
    expect(generator.afterBatch('x:1', 2)).toEqual({ kind: 'watermark', timestamp: 1_000 });
    generator.carry('x:0', [c('up-0', 3_000)], 3);
    expect(generator.afterBatch('x:0', 3)).toEqual({ kind: 'watermark', timestamp: 2_000 });
  });

  it('a split without carried watermarks keeps the bounded-out-of-orderness rule', () => {
    const generator = new WatermarkGenerator(settings());
    generator.observe('y:0', 10_000);
    expect(generator.afterBatch('y:0', 0)).toEqual({ kind: 'watermark', timestamp: 4_999 });
  });

  it('every origin of every split idle: the source says idle', () => {
    const generator = new WatermarkGenerator(settings(30_000));
    generator.carry('x:0', [c('up-0', 1_000)], 0);
    expect(generator.afterBatch('x:0', 0)).toEqual({ kind: 'watermark', timestamp: 1_000 });
    expect(generator.onIdleTick(30_000)).toEqual({ kind: 'idle' });
  });

  it('stores and restores the origins per split', () => {
    const generator = new WatermarkGenerator(settings(30_000));
    generator.carry('x:0', [c('up-0', 1_000), c('up-1', 9_000)], 0);
    generator.afterBatch('x:0', 0);
    const restored = new WatermarkGenerator(settings(30_000), generator.current);
    restored.restoreCarried(JSON.parse(JSON.stringify(generator.storedCarried())), 10);
    // up-1 alone moving ahead must not make up-0's next records late.
    restored.carry('x:0', [c('up-1', 500_000)], 11);
    expect(restored.afterBatch('x:0', 11)).toBeUndefined();
    expect(restored.current).toBe(1_000);
  });
});
