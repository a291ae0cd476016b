import { classifyError } from '../../state/error-classification.ts';
import { CdcflowError } from '../../state/errors.ts';

/** A job graph or option that parallel execution does not support (thrown before anything runs). */
export class UnsupportedParallelJobError extends CdcflowError {
  constructor(message: string) {
    super(`${message}; run the job with parallelism 1 (the default) or change the graph`, {
      domain: 'user',
      retriable: false,
    });
  }
}

/**
 * A subtask's worker thread failed or exited. Its `cause` is the worker's error rebuilt with its
 * class and fields, and decides: retriable (or a thread that died) restarts the whole attempt from
 * the latest checkpoint; not retriable fails the job as it would at parallelism 1.
 */
export class SubtaskFailedError extends CdcflowError {
  constructor(
    readonly subtaskIndex: number,
    message: string,
    cause?: unknown,
  ) {
    const { domain, retriable } =
      cause === undefined ? { domain: 'internal' as const, retriable: true } : classifyError(cause);
    super(`subtask ${subtaskIndex} failed: ${message}`, {
      domain,
      retriable,
      cause,
      where: cause instanceof CdcflowError ? cause.where : { subtask: subtaskIndex },
    });
  }
}
