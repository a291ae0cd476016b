import type { Operator } from '../operator.ts';

/**
 * What replaying records into a sink does (the `replay_safety` label of `cdcflow_sink_info`):
 * `exactly-once` commits with the checkpoint (a replay rewrites nothing visible twice),
 * `idempotent` may write again but ends in the same state, `at-least-once` repeats effects.
 */
export type ReplaySafety = 'exactly-once' | 'idempotent' | 'at-least-once';
export const REPLAY_SAFETIES: readonly ReplaySafety[] = ['exactly-once', 'idempotent', 'at-least-once'];

/** What `stream.sinkTo(...)` takes. A sink is an operator with no main output. */
export interface SinkDefinition<T> {
  readonly name: string;
  createOperator(): Operator<T, never>;
  /** What it writes to (`kind` label of `cdcflow_sink_info`). @default 'custom' */
  readonly kind?: string;
  /** @default 'at-least-once' (a sink that says nothing is assumed to repeat what it is sent again) */
  readonly replaySafety?: ReplaySafety;
  /**
   * Its writes act outside (HTTP calls, e-mails, payments): an `at-least-once` sink with side
   * effects is never replayed silently — restoring a checkpoint older than its last commit, or
   * resetting offsets behind it, needs `allowReplay` (CLI `--allow-replay`). @default false
   */
  readonly sideEffects?: boolean;
}
