/**
 * The combined watermark over input channels, with Flink's idleness rules (StatusWatermarkValve):
 * idle channels are left out, all idle flushes to the highest watermark, and a channel that comes
 * back behind the combined watermark neither moves it back nor holds the others until it caught up.
 */
import { describe, expect, it } from 'vitest';
import { WatermarkHolder } from '../../../../runtime/execution/watermark-holder.ts';

describe('WatermarkHolder', () => {
  it('is the minimum over all channels, each at −∞ until it reports', () => {
    const holder = new WatermarkHolder(3);
    expect(holder.update(0, 100)).toBeUndefined();
    expect(holder.update(1, 200)).toBeUndefined();
    expect(holder.update(2, 150)).toBe(100);
    expect(holder.update(0, 300)).toBe(150);
    expect(holder.update(0, 250)).toBeUndefined();
    expect(holder.value).toBe(150);
  });

  it('leaves an idle channel out: one that never reports does not hold the others back', () => {
    const holder = new WatermarkHolder(3);
    holder.update(0, 100);
    expect(holder.markIdle(2)).toBeUndefined();
    expect(holder.update(1, 120)).toBe(100);
    expect(holder.idle).toBe(false);
    expect(holder.update(0, 130)).toBe(120);
  });

  it('when the last channel that held the minimum goes idle, flushes to the highest watermark and is idle', () => {
    const holder = new WatermarkHolder(2);
    holder.update(0, 100);
    holder.update(1, 50);
    expect(holder.value).toBe(50);
    expect(holder.markIdle(0)).toBeUndefined();
    expect(holder.idle).toBe(false);
    expect(holder.markIdle(1)).toBe(100);
    expect(holder.idle).toBe(true);
    expect(holder.markIdle(1)).toBeUndefined();
  });

  it('every channel idle from the start: idle, the watermark stays', () => {
    const holder = new WatermarkHolder(2, 40);
    expect(holder.markIdle(0)).toBeUndefined();
    expect(holder.markIdle(1)).toBeUndefined();
    expect(holder.idle).toBe(true);
    expect(holder.value).toBe(40);
  });

  it('a channel active again behind the combined watermark does not move it back nor hold it until it caught up', () => {
    const holder = new WatermarkHolder(2);
    holder.update(0, 100);
    holder.update(1, 100);
    holder.markIdle(1);
    expect(holder.update(0, 200)).toBe(200);
    // Channel 1 returns at 150: behind, so it does not count yet...
    expect(holder.update(1, 150)).toBeUndefined();
    expect(holder.value).toBe(200);
    expect(holder.idle).toBe(false);
    // ...and channel 0 alone moves the watermark on meanwhile.
    expect(holder.update(0, 300)).toBe(300);
    // Once it caught up it counts again and holds the minimum.
    expect(holder.update(1, 310)).toBeUndefined();
    expect(holder.update(0, 400)).toBe(310);
  });

  it('a channel active again not behind the combined watermark counts at once', () => {
    const holder = new WatermarkHolder(2);
    holder.update(0, 100);
    holder.update(1, 100);
    holder.markIdle(0);
    holder.markActive(0);
    // Channel 0 came back at 100 == the combined watermark: it holds channel 1 back again.
    expect(holder.update(1, 150)).toBeUndefined();
    expect(holder.update(0, 120)).toBe(120);
  });

  it('an explicit active behind the combined watermark waits until its watermark caught up', () => {
    const holder = new WatermarkHolder(2);
    holder.update(0, 100);
    holder.update(1, 100);
    holder.markIdle(0);
    expect(holder.update(1, 150)).toBe(150);
    holder.markActive(0);
    expect(holder.update(1, 180)).toBe(180);
    // Channel 1 goes idle while channel 0 is active but behind: not idle, nothing to advance.
    expect(holder.markIdle(1)).toBeUndefined();
    expect(holder.idle).toBe(false);
    expect(holder.update(0, 190)).toBe(190);
  });

  it('the first watermark after an idle period reactivates the channel (no explicit active needed)', () => {
    const holder = new WatermarkHolder(2);
    holder.markIdle(1);
    holder.markIdle(0);
    expect(holder.idle).toBe(true);
    expect(holder.update(0, 10)).toBe(10);
    expect(holder.idle).toBe(false);
  });

  it('an ended channel (+∞) never holds the others back', () => {
    const holder = new WatermarkHolder(2);
    holder.markIdle(1);
    expect(holder.update(1, Number.POSITIVE_INFINITY)).toBeUndefined();
    expect(holder.update(0, 70)).toBe(70);
  });
});
