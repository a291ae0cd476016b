/**
 * When a failed attempt is restarted, and after how long. Exponential back-off per incident:
 * consecutive failures wait ~initial, 2×, 4× … up to max, and after `maxAttempts` of them the job
 * gives up. An attempt that ran at least `resetAfterMs` before it failed starts a new incident
 * (Flink's exponential-delay strategy calls it the reset-backoff threshold): the budget bounds a
 * crash loop or one long outage, not the number of failures over the job's lifetime — without the
 * reset a job that survived ten broker restarts over a month died on the eleventh.
 */

import { backoffDelay, isRetriable } from '../state/index.ts';

/** The job's back-off (state/backoff.ts, ±20 % jitter): attempt 1 waits ~initial, then doubles up to max. */
export function restartDelay(attempt: number, initialMs: number, maxMs: number): number {
  return backoffDelay(Math.max(1, attempt), { initialDelayMs: initialMs, maxDelayMs: maxMs });
}

export interface RestartPolicy {
  readonly maxAttempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly resetAfterMs: number;
}

/**
 * What to do after a failed attempt: restart after `delayMs` (the `attempt`-th of this incident),
 * or give up — because the budget is spent, or because the error says restarting cannot help.
 */
export type RestartDecision =
  | { readonly restart: true; readonly attempt: number; readonly delayMs: number }
  | { readonly restart: false; readonly attempt: number; readonly reason: 'budget' | 'not-retriable' };

export class RestartBudget {
  private consecutive = 0;

  constructor(private readonly policy: RestartPolicy) {}

  /**
   * Records a failure of an attempt that ran `ranMs` and decides. `error` decides first: a
   * configuration or user-code error, or a record that fails the same way on every replay, gives
   * up at once (`classifyError` in state/error-classification.ts says which).
   */
  onFailure(ranMs: number, error?: unknown): RestartDecision {
    if (ranMs >= this.policy.resetAfterMs) this.consecutive = 0;
    this.consecutive += 1;
    const attempt = this.consecutive;
    if (!isRetriable(error)) return { restart: false, attempt, reason: 'not-retriable' };
    if (attempt > this.policy.maxAttempts) return { restart: false, attempt, reason: 'budget' };
    return {
      restart: true,
      attempt,
      delayMs: restartDelay(attempt, this.policy.initialDelayMs, this.policy.maxDelayMs),
    };
  }
}
