import { describe, expect, it } from 'vitest';
import { RestartBudget, restartDelay, type RestartDecision } from '../../../runtime/restart-strategy.ts';

const policy = { maxAttempts: 3, initialDelayMs: 1000, maxDelayMs: 4000, resetAfterMs: 60_000 };
const attempts = (decisions: RestartDecision[]) =>
  decisions.map((d) => (d.restart ? d.attempt : `give up at ${d.attempt}`));

describe('restart budget', () => {
  it('backs off exponentially (with ±20 % jitter) up to the maximum', () => {
    for (let i = 0; i < 50; i++) {
      expect(restartDelay(1, 1000, 4000)).toBeGreaterThanOrEqual(800);
      expect(restartDelay(1, 1000, 4000)).toBeLessThanOrEqual(1200);
      expect(restartDelay(3, 1000, 4000)).toBeGreaterThanOrEqual(3200);
      expect(restartDelay(9, 1000, 4000)).toBeLessThanOrEqual(4800);
    }
  });

  it('gives up after maxAttempts failures in a row (a crash loop)', () => {
    const budget = new RestartBudget(policy);
    expect(attempts([budget.onFailure(10), budget.onFailure(10), budget.onFailure(10), budget.onFailure(10)])).toEqual([
      1,
      2,
      3,
      'give up at 4',
    ]);
  });

  it('counts per incident: an attempt that ran resetAfterMs before failing starts over', () => {
    // Before: one counter for the whole life of the job, so rare, fully recovered outages added
    // up until a healthy job gave up on its eleventh.
    const budget = new RestartBudget(policy);
    const decisions: RestartDecision[] = [];
    for (let incident = 0; incident < 5; incident++) {
      decisions.push(budget.onFailure(3_600_000)); // ran an hour, then the broker went down
      decisions.push(budget.onFailure(5_000), budget.onFailure(5_000)); // still down twice more
    }
    expect(attempts(decisions)).toEqual([1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]);
    const first = decisions[3];
    expect(first?.restart === true && first.delayMs).toBeLessThanOrEqual(1200);
  });

  it('never gives up with maxAttempts: Infinity, and the delay stays at the maximum', () => {
    const budget = new RestartBudget({ ...policy, maxAttempts: Number.POSITIVE_INFINITY });
    let last: RestartDecision | undefined;
    for (let i = 0; i < 1000; i++) last = budget.onFailure(1);
    expect(last?.restart).toBe(true);
    expect(last?.restart === true && last.delayMs).toBeLessThanOrEqual(4800);
  });
});
