/**
 * When a failed attempt is restarted, and after how long. Exponential back-off per incident:
 * consecutive failures wait ~initial, 2×, 4× … up to max, and after `maxAttempts` of them the job
 * gives up. An attempt that ran at least `resetAfterMs` before it failed starts a new incident
 * (Flink's exponential-delay strategy calls it the reset-backoff threshold): the budget bounds a
 * crash loop or one long outage, not the number of failures over the job's lifetime — without the
 * reset a job that survived ten broker restarts over a month died on the eleventh.
 */

/** Exponential back-off with jitter: attempt 1 waits ~initial, then doubles up to max. */
export function restartDelay(attempt: number, initialMs: number, maxMs: number): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
  // Jitter keeps several failing jobs from hammering a recovering service in lockstep.
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export interface RestartPolicy {
  readonly maxAttempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly resetAfterMs: number;
}

/** What to do after a failed attempt: restart after `delayMs` (the `attempt`-th of this incident), or give up. */
export type RestartDecision = { readonly restart: true; readonly attempt: number; readonly delayMs: number } | { readonly restart: false; readonly attempt: number };

export class RestartBudget {
  private consecutive = 0;

  constructor(private readonly policy: RestartPolicy) {}

  /** Records a failure of an attempt that ran `ranMs` and decides. */
  onFailure(ranMs: number): RestartDecision {
    if (ranMs >= this.policy.resetAfterMs) this.consecutive = 0;
    this.consecutive += 1;
    const attempt = this.consecutive;
    if (attempt > this.policy.maxAttempts) return { restart: false, attempt };
    return { restart: true, attempt, delayMs: restartDelay(attempt, this.policy.initialDelayMs, this.policy.maxDelayMs) };
  }
}
