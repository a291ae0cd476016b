/**
 * The sink transaction lifecycle's transition table: every legal move is taken, every other one is
 * refused with IllegalTransactionTransitionError naming the transaction, from and to, and leaves
 * the transaction where it was.
 */
import { describe, expect, it } from 'vitest';
import {
  IllegalTransactionTransitionError,
  SINK_TRANSACTION_STATES,
  SINK_TRANSACTION_TRANSITIONS,
  SinkTransaction,
  canTransition,
  type SinkTransactionState,
} from '../../../../operators/sinks/sink-transaction-state.ts';
import { CdcflowError } from '../../../../state/errors.ts';

/** A transaction brought to `state` along legal moves only. */
function inState(state: SinkTransactionState, name = 'txn'): SinkTransaction {
  if (state === 'open') return SinkTransaction.open(name);
  const txn = state === 'aborted' ? SinkTransaction.open(name) : SinkTransaction.adopt(name);
  if (state !== 'pre-committed') txn.moveTo(state);
  return txn;
}

const legal: readonly (readonly [SinkTransactionState, SinkTransactionState])[] = [
  ['open', 'pre-committed'],
  ['open', 'committed'],
  ['open', 'aborted'],
  ['pre-committed', 'committed'],
  ['pre-committed', 'aborted'],
  ['pre-committed', 'recovered'],
];
const isLegal = (from: SinkTransactionState, to: SinkTransactionState) =>
  legal.some(([f, t]) => f === from && t === to);
const pairs = SINK_TRANSACTION_STATES.flatMap((from) => SINK_TRANSACTION_STATES.map((to) => [from, to] as const));

describe('sink transaction lifecycle', () => {
  it('has exactly the documented transitions (committed, recovered and aborted are final)', () => {
    expect(pairs.filter(([from, to]) => canTransition(from, to))).toEqual([...legal]);
    for (const state of ['committed', 'recovered', 'aborted'] as const)
      expect(SINK_TRANSACTION_TRANSITIONS[state]).toEqual([]);
  });

  it.each(legal)('%s → %s is taken', (from, to) => {
    const txn = inState(from);
    expect(txn.state).toBe(from);
    txn.moveTo(to);
    expect(txn.state).toBe(to);
  });

  it.each(pairs.filter(([from, to]) => !isLegal(from, to)))(
    '%s → %s is refused with the typed error, and the state stays',
    (from, to) => {
      const txn = inState(from, 'job:sink:0:7');
      let error: unknown;
      try {
        txn.moveTo(to);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(IllegalTransactionTransitionError);
      expect(error).toBeInstanceOf(CdcflowError);
      const illegal = error as IllegalTransactionTransitionError;
      expect([illegal.transaction, illegal.from, illegal.to]).toEqual(['job:sink:0:7', from, to]);
      expect(illegal.domain).toBe('internal');
      expect(illegal.retriable).toBe(false);
      expect(illegal.message).toContain(`job:sink:0:7: illegal transition ${from} → ${to}`);
      expect(txn.state).toBe(from);
      expect(() => txn.checkMove(to)).toThrow(IllegalTransactionTransitionError);
    },
  );

  it('takes writes only while open', () => {
    expect(() => SinkTransaction.open('a').requireOpen()).not.toThrow();
    for (const state of SINK_TRANSACTION_STATES.filter((s) => s !== 'open')) {
      expect(() => inState(state, 'b').requireOpen()).toThrow(
        new IllegalTransactionTransitionError('b', state, 'open'),
      );
    }
  });

  it('adopts a transaction known only from its checkpoint handle as pre-committed', () => {
    const adopted = SinkTransaction.adopt('job:sink:0:3');
    expect(adopted.state).toBe('pre-committed');
    adopted.moveTo('recovered');
    expect(() => adopted.moveTo('committed')).toThrow(
      /recovered → committed \(from recovered only nothing: it is final\)/,
    );
  });
});
