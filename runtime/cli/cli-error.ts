import { CdcflowError } from '../../state/errors.ts';

/** A command that cannot do what was asked; main prints the message (no stack) and exits with `exitCode`. */
export class CliError extends CdcflowError {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message, { domain: 'user', retriable: false });
  }
}

/** Exit code of a command on a job that is not running. */
export const NOT_RUNNING = 3;
