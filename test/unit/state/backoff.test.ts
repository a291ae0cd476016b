/** The one back-off helper (state/backoff.ts, cockatiel underneath) every retry loop of cdcflow uses. */
import { describe, expect, it } from 'vitest';
import { backoffDelay, CdcflowError, retryWithBackoff } from '../../../state/index.ts';

const fast = { initialDelayMs: 1, maxDelayMs: 4 };

describe('retryWithBackoff', () => {
  it('retries a transient failure until it succeeds', async () => {
    let calls = 0;
    const seen: number[] = [];
    const result = await retryWithBackoff(async (attempt) => {
      seen.push(attempt);
      if (++calls < 3) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
      return 'done';
    }, fast);
    expect(result).toBe('done');
    expect(seen).toEqual([1, 2, 3]);
  });

  it('fails at once on an error that says retrying cannot help', async () => {
    let calls = 0;
    const refused = new CdcflowError('bad record', { domain: 'user', retriable: false });
    await expect(
      retryWithBackoff(async () => {
        calls++;
        throw refused;
      }, fast),
    ).rejects.toBe(refused);
    expect(calls).toBe(1);
  });

  it('stops after maxAttempts calls and throws the last error', async () => {
    let calls = 0;
    await expect(
      retryWithBackoff(
        async () => {
          throw new Error(`timeout ${++calls}`);
        },
        { ...fast, maxAttempts: 4 },
      ),
    ).rejects.toThrow('timeout 4');
    expect(calls).toBe(4);
  });

  it('starts no retry after retryForMs', async () => {
    let calls = 0;
    const retries: number[] = [];
    await expect(
      retryWithBackoff(
        async () => {
          calls++;
          await new Promise((r) => setTimeout(r, 30));
          throw new Error('timed out');
        },
        { ...fast, retryForMs: 50, onRetry: (_e, attempt) => retries.push(attempt) },
      ),
    ).rejects.toThrow('timed out');
    expect(calls).toBe(2);
    expect(retries).toEqual([1]);
  });

  it('backs off exponentially with ±20 % jitter up to the maximum', () => {
    const policy = { initialDelayMs: 100, maxDelayMs: 1000 };
    for (let i = 0; i < 50; i++) {
      expect(backoffDelay(1, policy)).toBeGreaterThanOrEqual(80);
      expect(backoffDelay(1, policy)).toBeLessThanOrEqual(120);
      expect(backoffDelay(3, policy)).toBeGreaterThanOrEqual(320);
      expect(backoffDelay(3, policy)).toBeLessThanOrEqual(480);
      expect(backoffDelay(100, policy)).toBeLessThanOrEqual(1200);
      expect(backoffDelay(100, policy)).toBeGreaterThanOrEqual(800);
    }
  });
});
