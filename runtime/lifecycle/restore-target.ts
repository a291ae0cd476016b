/**
 * What a restart restores from. Once a checkpoint of this run completed, only the newest one is
 * the truth ('latest'). Before that, a restart retries the target the operator asked for —
 * never another one: a mistyped savepoint must not silently become "the newest state". A restore
 * target that does not exist or cannot be read, or a user error that retrying cannot fix (a
 * refused fresh start, a held lease), ends the job instead of restarting it.
 */
import { CheckpointFormatError, CheckpointNotFoundError, type RestoreSource } from '../../checkpoints/index.ts';
import { CdcflowError } from '../../state/errors.ts';

type Target = RestoreSource | 'none';

/** The next attempt's target, or undefined when restarting cannot help. */
export function nextRestoreTarget(
  requested: Target,
  current: Target,
  completedThisRun: boolean,
  error: unknown,
): Target | undefined {
  if (error instanceof CheckpointNotFoundError || error instanceof CheckpointFormatError) return undefined;
  if (error instanceof CdcflowError && error.domain === 'user' && !error.retriable) return undefined;
  if (completedThisRun) return 'latest';
  return current === 'latest' ? 'latest' : requested;
}
