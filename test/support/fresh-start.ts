/**
 * What the fresh-start guard tests share (Postgres/Redis and Kafka): a job of theirs started
 * under a checkpoint folder with no checkpoint, the error its run ended with, and the refusal
 * every sink must give for leftovers of a run it does not know.
 */
import { expect } from 'vitest';
import { FreshStartRefusedError } from '../../operators/sinks/two-phase-commit.ts';
import { StreamEnvironment } from '../../runtime/index.ts';

/** The environment of a guarded job: checkpoints under `dir` (none there), memory state, no signal handlers. */
export function freshStartEnvironment(
  jobName: string,
  dir: string,
  options: { readonly discardSinkTransactions?: boolean; readonly maxAttempts?: number } = {},
): StreamEnvironment {
  return StreamEnvironment.create({
    jobName,
    checkpoints: { dir, intervalMs: 200 },
    state: { backend: 'memory' },
    ...(options.maxAttempts === undefined ? {} : { restart: { maxAttempts: options.maxAttempts, initialDelayMs: 50 } }),
    lifecycle: { handleSignals: false },
    discardSinkTransactions: options.discardSinkTransactions ?? false,
  });
}

/** What `env.execute()` failed with; undefined when it succeeded. */
export function failureOf(env: StreamEnvironment): Promise<unknown> {
  return env.execute().then(
    () => undefined,
    (error: unknown) => error,
  );
}

/** The refusal names what it found (`leftovers`) and both ways out (restore the checkpoint, or discard). */
export function expectFreshStartRefused(error: unknown, leftovers: readonly string[]): void {
  expect(error).toBeInstanceOf(FreshStartRefusedError);
  const message = (error as Error).message;
  for (const leftover of leftovers) expect(message).toContain(leftover);
  expect(message).toContain('--from-checkpoint');
  expect(message).toContain('--discard-sink-transactions');
}
