/**
 * The lifecycle every two-phase sink transaction goes through, as one transition table (in the
 * spirit of kafkajs's producer transaction state machine, but per transaction: a sink holds one
 * open transaction and any number of pre-committed ones at once).
 *
 *   open ──▶ pre-committed ──▶ committed    (its checkpoint completed: commit)
 *     │            ├─────────▶ recovered    (a restore committed it: recorded by the restored checkpoint)
 *     │            └─────────▶ aborted      (rolled back: no completed checkpoint recorded it)
 *     ├──────────────────────▶ committed    (one-phase: committed at the barrier, idempotent mode)
 *     └──────────────────────▶ aborted      (rolled back at close, or lost with its connection)
 *
 * A pre-committed transaction that reaches `committed`, `recovered` or `aborted` never moves again:
 * a commit repeated after a restore is a new transaction object adopted from the checkpoint
 * handle (`SinkTransaction.adopt`), so idempotent re-commits stay legal.
 */
import { CdcflowError } from '../../state/errors.ts';

export type SinkTransactionState = 'open' | 'pre-committed' | 'committed' | 'aborted' | 'recovered';

export const SINK_TRANSACTION_STATES: readonly SinkTransactionState[] = [
  'open',
  'pre-committed',
  'committed',
  'aborted',
  'recovered',
];

/** Every allowed move; anything else is a sink calling its steps out of order (a bug). */
export const SINK_TRANSACTION_TRANSITIONS: Readonly<Record<SinkTransactionState, readonly SinkTransactionState[]>> = {
  open: ['pre-committed', 'committed', 'aborted'],
  'pre-committed': ['committed', 'recovered', 'aborted'],
  committed: [],
  recovered: [],
  aborted: [],
};

export function canTransition(from: SinkTransactionState, to: SinkTransactionState): boolean {
  return SINK_TRANSACTION_TRANSITIONS[from].includes(to);
}

/** A sink moved one of its transactions along a path the table does not have. */
export class IllegalTransactionTransitionError extends CdcflowError {
  constructor(
    readonly transaction: string,
    readonly from: SinkTransactionState,
    readonly to: SinkTransactionState,
  ) {
    const allowed = SINK_TRANSACTION_TRANSITIONS[from];
    super(
      `sink transaction ${transaction}: illegal transition ${from} → ${to} (from ${from} only ${allowed.length === 0 ? 'nothing: it is final' : allowed.join(', ')}). ` +
        'This is a bug in the sink (its steps ran out of order), not in the data: report it with this message; restoring from the latest checkpoint resolves the transaction.',
      { domain: 'internal', retriable: false },
    );
  }
}

/** One sink transaction's place in the lifecycle. `name` says which (gid, transactional id, staged batch). */
export class SinkTransaction {
  private current: SinkTransactionState;

  private constructor(
    readonly name: string,
    initial: SinkTransactionState,
  ) {
    this.current = initial;
  }

  /** A transaction this committer begins: writes go into it. */
  static open(name: string): SinkTransaction {
    return new SinkTransaction(name, 'open');
  }

  /** A transaction known only from its checkpoint handle (prepared by this or an earlier process). */
  static adopt(name: string): SinkTransaction {
    return new SinkTransaction(name, 'pre-committed');
  }

  get state(): SinkTransactionState {
    return this.current;
  }

  /** Moves to `to`, or throws {@link IllegalTransactionTransitionError} and stays where it was. */
  moveTo(to: SinkTransactionState): void {
    this.checkMove(to);
    this.current = to;
  }

  /** Throws unless `to` is reachable now: called before the side effect that takes it there (PREPARE, COMMIT). */
  checkMove(to: SinkTransactionState): void {
    if (!canTransition(this.current, to)) throw new IllegalTransactionTransitionError(this.name, this.current, to);
  }

  /** Writes go only into an open transaction; writing into any other would reopen it (`<state> → open`, never legal). */
  requireOpen(): void {
    if (this.current !== 'open') throw new IllegalTransactionTransitionError(this.name, this.current, 'open');
  }
}
