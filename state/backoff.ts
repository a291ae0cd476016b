/**
 * The one back-off policy of cdcflow (cockatiel's retry with an exponential back-off and ±20 %
 * jitter), used by everything that tries again: the restart strategy, two-phase sink commits,
 * Kafka transaction control and the Elasticsearch bulk writer. `retryIf` defaults to
 * `isRetriable`, so an error that says retrying cannot help (a bad record, a configuration
 * mistake) fails at once instead of being retried until the budget runs out.
 *
 * It lives in state/ (the bottom layer) only so that every layer may import it, as errors.ts does.
 */
import { ExponentialBackoff, handleWhen, retry, type GeneratorFn } from 'cockatiel';
import { isRetriable } from './error-classification.ts';

export interface BackoffPolicy {
  /** Delay before the first retry; doubles on each one. */
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Relative jitter: each delay is scaled by a random factor in [1 − jitter, 1 + jitter]. @default 0.2 */
  readonly jitter?: number;
}

export interface RetryOptions extends BackoffPolicy {
  /** Calls in total, the first included. @default Infinity */
  readonly maxAttempts?: number;
  /** No retry starts once this long has passed since the first call. @default no limit */
  readonly retryForMs?: number;
  /** Whether `error` is worth another call. @default isRetriable */
  readonly retryIf?: (error: unknown) => boolean;
  /** Before each wait: the error, the attempt that failed (1 = the first call) and the delay. */
  readonly onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/** Jitter keeps several failing jobs (or subtasks) from hammering a recovering service in lockstep. */
function jittered(jitter: number): GeneratorFn<number> {
  return (attempts = 0, options) => {
    const base = Math.min(options.maxDelay, options.initialDelay * options.exponent ** attempts);
    return [Math.round(base * (1 - jitter + Math.random() * 2 * jitter)), attempts + 1];
  };
}

function exponentialBackoff(policy: BackoffPolicy): ExponentialBackoff<number> {
  return new ExponentialBackoff({
    initialDelay: policy.initialDelayMs,
    maxDelay: policy.maxDelayMs,
    exponent: 2,
    generator: jittered(policy.jitter ?? 0.2),
  });
}

/** The wait before retry number `retry` (1-based): ~initial, 2×, 4× … up to max, jittered. */
export function backoffDelay(retryNumber: number, policy: BackoffPolicy): number {
  let step = exponentialBackoff(policy).next();
  // Past 60 doublings every delay is the maximum; walking further only costs time.
  for (let i = 1; i < Math.min(retryNumber, 60); i++) step = step.next(undefined);
  return step.duration;
}

/** Runs `action` until it succeeds, the error is not retriable, or the attempts or time run out; then throws the last error. */
export async function retryWithBackoff<T>(action: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const startedAt = Date.now();
  const retryIf = options.retryIf ?? isRetriable;
  const deadline = options.retryForMs === undefined ? Number.POSITIVE_INFINITY : startedAt + options.retryForMs;
  const policy = retry(
    handleWhen((error) => retryIf(error) && Date.now() < deadline),
    {
      maxAttempts: Math.max(0, (options.maxAttempts ?? Number.POSITIVE_INFINITY) - 1),
      backoff: exponentialBackoff(options),
    },
  );
  const onRetry = options.onRetry;
  const listener =
    onRetry === undefined
      ? undefined
      : policy.onRetry((event) => onRetry('error' in event ? event.error : event.value, event.attempt, event.delay));
  try {
    return await policy.execute(({ attempt }) => action(attempt + 1));
  } finally {
    listener?.dispose();
  }
}
