import { CdcflowError } from '../../state/errors.ts';

/** A job graph or option that parallel execution does not support (thrown before anything runs). */
export class UnsupportedParallelJobError extends CdcflowError {
  constructor(message: string) {
    super(`${message}; run the job with parallelism 1 (the default) or change the graph`, { domain: 'user', retriable: false });
  }
}

/** A subtask's worker thread failed or exited; the whole attempt restarts from the latest checkpoint. */
export class SubtaskFailedError extends CdcflowError {
  constructor(
    readonly subtaskIndex: number,
    message: string,
    cause?: unknown,
  ) {
    super(`subtask ${subtaskIndex} failed: ${message}`, { domain: 'internal', retriable: true, cause });
  }
}
