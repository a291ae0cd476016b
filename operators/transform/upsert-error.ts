import { CdcflowError, type CdcflowErrorOptions } from '../../state/errors.ts';

/** Thrown by `upsert()` for a change it must not apply under the job's settings (never retriable). */
export class UpsertError extends CdcflowError {
  constructor(message: string, options: Partial<CdcflowErrorOptions> = {}) {
    super(message, { domain: 'user', retriable: false, ...options });
  }
}
