import { CdcflowError, type CdcflowErrorOptions } from '../../state/errors.ts';

/** reconcile could not compare (no such table, no key, a column missing on one side, no connection). */
export class ReconcileError extends CdcflowError {
  constructor(message: string, options: CdcflowErrorOptions = { domain: 'user' }) {
    super(message, options);
  }
}
