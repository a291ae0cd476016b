import { CdcflowError } from '../../state/errors.ts';

/** The job configuration is invalid; the message names each field, where its value came from, and what is wrong. */
export class ConfigError extends CdcflowError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { domain: 'user', retriable: false, ...options });
  }
}
