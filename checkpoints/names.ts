import { CheckpointConfigError } from './errors.ts';

// Job and savepoint names become directory names (or key prefixes in an object store): keep them
// portable and unable to traverse.
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export function isValidName(name: string): boolean {
  return NAME.test(name);
}

/** Throws `CheckpointConfigError` unless `name` is usable as a job or savepoint directory name. */
export function assertValidName(what: 'jobName' | 'savepoint name', name: string): void {
  if (!isValidName(name)) {
    throw new CheckpointConfigError(
      `${what} ${JSON.stringify(name)} is not usable as a directory name: use 1-200 characters from ` +
        'A-Z a-z 0-9 . _ - starting with a letter or digit',
    );
  }
}
