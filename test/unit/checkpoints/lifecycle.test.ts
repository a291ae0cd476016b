import { describe, expect, it } from 'vitest';
import { IllegalCheckpointTransitionError } from '../../../checkpoints/errors.ts';
import { assertTransition, canTransition } from '../../../checkpoints/lifecycle.ts';
import type { CheckpointState } from '../../../checkpoints/lifecycle.ts';
import { PendingCheckpoint } from '../../../checkpoints/pending-checkpoint.ts';
import { snapshot } from './helpers.ts';

const STATES: CheckpointState[] = ['TRIGGERED', 'ACKNOWLEDGING', 'PERSISTING', 'COMPLETED', 'ABORTED'];
const LEGAL = new Set([
  'TRIGGERED>ACKNOWLEDGING',
  'TRIGGERED>ABORTED',
  'ACKNOWLEDGING>PERSISTING',
  'ACKNOWLEDGING>ABORTED',
  'PERSISTING>COMPLETED',
  'PERSISTING>ABORTED',
]);

describe('checkpoint lifecycle transition table', () => {
  it('allows exactly the documented transitions', () => {
    for (const from of STATES) {
      for (const to of STATES) expect(canTransition(from, to), `${from} -> ${to}`).toBe(LEGAL.has(`${from}>${to}`));
    }
  });

  it('throws loudly on an illegal transition', () => {
    expect(() => assertTransition(4, 'COMPLETED', 'ABORTED')).toThrow(IllegalCheckpointTransitionError);
    expect(() => assertTransition(4, 'TRIGGERED', 'COMPLETED')).toThrow(
      /checkpoint 4: illegal lifecycle transition TRIGGERED -> COMPLETED/,
    );
  });

  it('pending checkpoint refuses to skip persisting', () => {
    const pending = new PendingCheckpoint({
      checkpointId: 1,
      kind: 'checkpoint',
      savepointName: undefined,
      triggeredAtMs: 0,
      tasks: ['a#0'],
    });
    pending.transition('ACKNOWLEDGING');
    expect(() => pending.transition('COMPLETED')).toThrow(IllegalCheckpointTransitionError);
    expect(pending.state).toBe('ACKNOWLEDGING');
  });

  it('records acks once, from expected tasks, only while collecting', () => {
    const pending = new PendingCheckpoint({
      checkpointId: 1,
      kind: 'checkpoint',
      savepointName: undefined,
      triggeredAtMs: 0,
      tasks: ['a#0', 'b#0'],
    });
    expect(pending.acknowledge('a#0', snapshot('a#0', 1))).toBe('accepted');
    expect(pending.acknowledge('a#0', snapshot('a#0', 1))).toBe('duplicate');
    expect(pending.acknowledge('c#0', snapshot('c#0', 1))).toBe('unknown-task');
    expect(pending.missingTasks()).toEqual(['b#0']);
    pending.transition('ABORTED');
    expect(pending.acknowledge('b#0', snapshot('b#0', 1))).toBe('not-accepting');
    expect(pending.fullyAcknowledged).toBe(false);
  });
});
