import { CdcflowError, type CdcflowErrorOptions } from '../../../state/errors.ts';

/** Thrown by the transactional Kafka sink; `retriable` errors clear once the broker recovers. */
export class KafkaSinkError extends CdcflowError {
  constructor(message: string, options: Partial<CdcflowErrorOptions> = {}) {
    super(message, { domain: 'external', ...options });
  }
}
