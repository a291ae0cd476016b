import { IllegalCheckpointTransitionError } from './errors.ts';

/**
 * Lifecycle of one pending checkpoint:
 *
 *   TRIGGERED ──barrier injected──▶ ACKNOWLEDGING ──all acks──▶ PERSISTING ──metadata durable──▶ COMPLETED
 *       └──────────────┴──────────────────┴── timeout / decline / trigger or persist failure / stop ──▶ ABORTED
 *
 * Acks that arrive while still TRIGGERED (a fast source) are recorded; the all-acked check runs once
 * the barrier injection has returned. PERSISTING is not abortable by timeout: once the metadata write
 * has started only its own outcome may decide, or a checkpoint the coordinator called aborted could
 * still appear complete on disk.
 */
export type CheckpointState = 'TRIGGERED' | 'ACKNOWLEDGING' | 'PERSISTING' | 'COMPLETED' | 'ABORTED';

const TRANSITIONS: Readonly<Record<CheckpointState, readonly CheckpointState[]>> = {
  TRIGGERED: ['ACKNOWLEDGING', 'ABORTED'],
  ACKNOWLEDGING: ['PERSISTING', 'ABORTED'],
  PERSISTING: ['COMPLETED', 'ABORTED'],
  COMPLETED: [],
  ABORTED: [],
};

export function canTransition(from: CheckpointState, to: CheckpointState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Throws `IllegalCheckpointTransitionError` unless the table allows `from -> to`. */
export function assertTransition(checkpointId: number, from: CheckpointState, to: CheckpointState): void {
  if (!canTransition(from, to)) throw new IllegalCheckpointTransitionError(checkpointId, from, to);
}

export function isTerminal(state: CheckpointState): boolean {
  return TRANSITIONS[state].length === 0;
}
