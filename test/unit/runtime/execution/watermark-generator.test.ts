/**
 * Source watermarks when the reader owns no split: idle once the reader knows its assignment is
 * empty (independent of `withIdleness`), holding event time back while the assignment is unknown,
 * and active again — `active` before the first records — once a split is assigned.
 */
import { describe, expect, it } from 'vitest';
import { WatermarkGenerator, type WatermarkSettings } from '../../../../runtime/execution/watermark-generator.ts';

const settings = (idlenessMs?: number): WatermarkSettings => ({
  outOfOrdernessMs: 0,
  timestampOf: undefined,
  idlenessMs,
});

describe('WatermarkGenerator: a source without splits', () => {
  it('says nothing while its assignment is unknown (the splits to come may be behind)', () => {
    const generator = new WatermarkGenerator(settings());
    expect(generator.onIdleTick(1000)).toBeUndefined();
    expect(generator.onIdleTick(100_000)).toBeUndefined();
  });

  it('is idle once its assignment is known to be empty, without withIdleness, and says so once', () => {
    const generator = new WatermarkGenerator(settings());
    generator.assign([], 0);
    expect(generator.onIdleTick(1)).toEqual({ kind: 'idle' });
    expect(generator.onIdleTick(2)).toBeUndefined();
  });

  it('becomes active when a split is assigned: active before its records, then its watermark', () => {
    const generator = new WatermarkGenerator(settings());
    generator.assign([], 0);
    expect(generator.onIdleTick(1)).toEqual({ kind: 'idle' });
    generator.assign(['t:2'], 10);
    // The new split holds the source at −∞ until it delivers; no second idle either.
    expect(generator.onIdleTick(20)).toBeUndefined();
    expect(generator.beforeBatch()).toEqual({ kind: 'active' });
    generator.observe('t:2', 5000);
    expect(generator.afterBatch('t:2', 30)).toEqual({ kind: 'watermark', timestamp: 4999 });
    expect(generator.beforeBatch()).toBeUndefined();
  });

  it('an assigned split that never delivers still holds the watermark back without idleness', () => {
    const generator = new WatermarkGenerator(settings());
    generator.assign(['t:0', 't:1'], 0);
    generator.observe('t:0', 5000);
    expect(generator.afterBatch('t:0', 10)).toBeUndefined();
    expect(generator.onIdleTick(1_000_000)).toBeUndefined();
  });

  it('with idleness, all splits idle is idle; the next batch makes the source active again first', () => {
    const generator = new WatermarkGenerator(settings(50));
    generator.assign(['t:0'], 0);
    generator.observe('t:0', 1000);
    expect(generator.afterBatch('t:0', 0)).toEqual({ kind: 'watermark', timestamp: 999 });
    expect(generator.onIdleTick(100)).toEqual({ kind: 'idle' });
    expect(generator.beforeBatch()).toEqual({ kind: 'active' });
    generator.observe('t:0', 500);
    // Behind its own watermark: no watermark, but the source is active again (it holds at 999).
    expect(generator.afterBatch('t:0', 110)).toBeUndefined();
    expect(generator.onIdleTick(200)).toEqual({ kind: 'idle' });
  });
});
