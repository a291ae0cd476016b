import { CdcflowError } from '../../state/errors.ts';

/**
 * An operator was entered while an earlier call into it was still running. The runtime drives
 * every operator from one awaited chain (a mailbox, as Flink's task thread), which is what keeps
 * each input's elements in order and barriers behind the records before them; a second caller
 * would let records overtake held ones after a barrier alignment. This is a runtime bug.
 */
export class ReentrantOperatorCallError extends CdcflowError {
  constructor(operator: string, call: string, running: string) {
    super(
      `operator '${operator}' was entered (${call}) while its ${running} was still running: elements could overtake each other; ` +
        'this is a cdcflow bug, please report it with the job graph',
      { domain: 'internal', retriable: false },
    );
  }
}
