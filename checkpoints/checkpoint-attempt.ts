import type { Clock } from './clock.ts';
import { CheckpointError } from './errors.ts';
import { collectSharedFiles, METADATA_FORMAT_VERSION, validateTaskSnapshot } from './checkpoint-metadata.ts';
import type { CheckpointKind, CheckpointMetadata, TaskSnapshot } from './checkpoint-metadata.ts';
import { PendingCheckpoint } from './pending-checkpoint.ts';
import type { AckOutcome } from './pending-checkpoint.ts';
import type { CheckpointStorage, StoredCheckpoint } from './storage.ts';

export type AttemptOutcome =
  | { readonly status: 'completed'; readonly stored: StoredCheckpoint }
  | { readonly status: 'aborted'; readonly reason: string; readonly cause?: unknown };

export interface AttemptContext {
  readonly jobName: string;
  readonly storage: CheckpointStorage;
  readonly clock: Clock;
  readonly tasks: readonly string[];
  readonly timeoutMs: number;
}

/**
 * One checkpoint or savepoint from barrier injection to a terminal lifecycle state: arms the
 * timeout, collects acks, and persists the metadata once every task has acknowledged.
 */
export class CheckpointAttempt {
  readonly pending: PendingCheckpoint;
  /** Settles (never rejects) when the attempt reaches COMPLETED or ABORTED. */
  readonly outcome: Promise<AttemptOutcome>;
  private settle: (outcome: AttemptOutcome) => void = () => undefined;
  private readonly cancelTimeout: () => void;

  constructor(
    private readonly ctx: AttemptContext,
    init: { checkpointId: number; kind: CheckpointKind; savepointName: string | undefined },
    /** Metadata is written only after this settles: the checkpoint before this one has its outcome notified. */
    private readonly persistAfter: Promise<void> = Promise.resolve(),
  ) {
    this.pending = new PendingCheckpoint({ ...init, triggeredAtMs: ctx.clock.now(), tasks: ctx.tasks });
    this.outcome = new Promise((resolve) => (this.settle = resolve));
    this.cancelTimeout = ctx.clock.schedule(ctx.timeoutMs, () =>
      this.abort(`timed out after ${ctx.timeoutMs}ms waiting for acks from ${this.pending.missingTasks().join(', ')}`),
    );
  }

  /** Injects the barrier via `triggerBarrier`; acks may arrive before it returns. */
  async inject(triggerBarrier: (checkpointId: number, kind: CheckpointKind) => void | Promise<void>): Promise<void> {
    try {
      await triggerBarrier(this.pending.checkpointId, this.pending.kind);
    } catch (error) {
      this.abort(`barrier injection failed: ${messageOf(error)}`, error);
    }
    if (this.pending.state !== 'TRIGGERED') return;
    this.pending.transition('ACKNOWLEDGING');
    this.persistIfReady();
  }

  /** Validates and records an ack; an invalid snapshot aborts the attempt. */
  acknowledge(taskId: string, snapshot: TaskSnapshot): AckOutcome | 'invalid' {
    let valid: TaskSnapshot;
    try {
      valid = validateTaskSnapshot(taskId, snapshot, (message) => {
        throw new CheckpointError(message);
      });
    } catch (error) {
      this.abort(`task ${taskId} sent an invalid snapshot: ${messageOf(error)}`, error);
      return 'invalid';
    }
    const outcome = this.pending.acknowledge(taskId, valid);
    if (outcome === 'accepted') this.persistIfReady();
    return outcome;
  }

  /** Aborts unless already terminal or persisting: once the write started, only its outcome decides. */
  abort(reason: string, cause?: unknown): void {
    const state = this.pending.state;
    if (state !== 'TRIGGERED' && state !== 'ACKNOWLEDGING') return;
    this.pending.transition('ABORTED');
    this.cancelTimeout();
    this.settle(cause === undefined ? { status: 'aborted', reason } : { status: 'aborted', reason, cause });
  }

  private persistIfReady(): void {
    if (this.pending.state === 'ACKNOWLEDGING' && this.pending.fullyAcknowledged) void this.persist();
  }

  private async persist(): Promise<void> {
    const { pending, ctx } = this;
    pending.transition('PERSISTING');
    this.cancelTimeout();
    let stored: StoredCheckpoint;
    try {
      // Checkpoints complete in id order; an older one still in flight settles first (its own timeout bounds the wait).
      await this.persistAfter;
      const metadata = this.metadata();
      stored =
        pending.savepointName !== undefined
          ? await ctx.storage.writeSavepoint(metadata, pending.savepointName)
          : await ctx.storage.writeCheckpoint(metadata);
    } catch (error) {
      // Storage guarantees a failed write left nothing restorable, so rolling back sinks is safe.
      pending.transition('ABORTED');
      this.settle({ status: 'aborted', reason: `persisting metadata failed: ${messageOf(error)}`, cause: error });
      return;
    }
    pending.transition('COMPLETED');
    this.settle({ status: 'completed', stored });
  }

  private metadata(): CheckpointMetadata {
    const tasks = this.pending.snapshots();
    return {
      formatVersion: METADATA_FORMAT_VERSION,
      jobName: this.ctx.jobName,
      checkpointId: this.pending.checkpointId,
      kind: this.pending.kind,
      triggeredAtMs: this.pending.triggeredAtMs,
      completedAtMs: this.ctx.clock.now(),
      fileBase: 'job-directory',
      tasks,
      sharedFiles: collectSharedFiles(tasks),
    };
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
