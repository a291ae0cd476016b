import { CdcflowError, type CdcflowErrorOptions } from '../../../state/errors.ts';

/** Thrown by the Elasticsearch sink; `retriable` ones clear once the cluster recovers (the job restores and replays). */
export class ElasticsearchSinkError extends CdcflowError {
  constructor(message: string, options: Partial<CdcflowErrorOptions> = {}) {
    super(message, { domain: 'external', ...options });
  }
}
