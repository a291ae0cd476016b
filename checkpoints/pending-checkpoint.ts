import { assertTransition, isTerminal } from './lifecycle.ts';
import type { CheckpointState } from './lifecycle.ts';
import type { CheckpointKind, TaskSnapshot } from './checkpoint-metadata.ts';

export type AckOutcome = 'accepted' | 'duplicate' | 'unknown-task' | 'not-accepting';

/** One checkpoint or savepoint between trigger and its terminal state; owns its transition rules. */
export class PendingCheckpoint {
  readonly checkpointId: number;
  readonly kind: CheckpointKind;
  readonly savepointName: string | undefined;
  readonly triggeredAtMs: number;
  private current: CheckpointState = 'TRIGGERED';
  private readonly expected: ReadonlySet<string>;
  private readonly acks = new Map<string, TaskSnapshot>();

  constructor(init: {
    checkpointId: number;
    kind: CheckpointKind;
    savepointName: string | undefined;
    triggeredAtMs: number;
    tasks: readonly string[];
  }) {
    this.checkpointId = init.checkpointId;
    this.kind = init.kind;
    this.savepointName = init.savepointName;
    this.triggeredAtMs = init.triggeredAtMs;
    this.expected = new Set(init.tasks);
  }

  get state(): CheckpointState {
    return this.current;
  }

  get terminal(): boolean {
    return isTerminal(this.current);
  }

  /** Moves to `to` or throws `IllegalCheckpointTransitionError`. */
  transition(to: CheckpointState): void {
    assertTransition(this.checkpointId, this.current, to);
    this.current = to;
  }

  /** Records an ack; only TRIGGERED and ACKNOWLEDGING accept them. */
  acknowledge(taskId: string, snapshot: TaskSnapshot): AckOutcome {
    if (this.current !== 'TRIGGERED' && this.current !== 'ACKNOWLEDGING') return 'not-accepting';
    if (!this.expected.has(taskId)) return 'unknown-task';
    if (this.acks.has(taskId)) return 'duplicate';
    this.acks.set(taskId, snapshot);
    return 'accepted';
  }

  isExpected(taskId: string): boolean {
    return this.expected.has(taskId);
  }

  get fullyAcknowledged(): boolean {
    return this.acks.size === this.expected.size;
  }

  missingTasks(): string[] {
    return [...this.expected].filter((id) => !this.acks.has(id));
  }

  /** Snapshots keyed by task id, sorted so metadata files are byte-stable for the same content. */
  snapshots(): Record<string, TaskSnapshot> {
    const out: Record<string, TaskSnapshot> = {};
    for (const id of [...this.acks.keys()].sort()) out[id] = this.acks.get(id) as TaskSnapshot;
    return out;
  }
}
