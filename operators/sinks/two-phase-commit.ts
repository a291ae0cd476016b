/**
 * The two-phase-commit sink contract, driven by checkpoints (see docs/checkpoint-commit-order.md):
 *
 *   write*  → preCommit(n) on barrier n (flush + PREPARE / flush inside the Kafka transaction /
 *             stage the batch) → the handle is stored in checkpoint n → commit(handle) once n
 *             is durable.
 *
 * A checkpoint that aborts leaves its prepared transactions pending; they commit with the next
 * checkpoint that completes (it contains their records too, since sources do not rewind).
 * On restore, `recover` commits every transaction the restored checkpoint recorded and rolls
 * back every other transaction this sink instance left prepared. Commits are idempotent and
 * retried with back-off, because after a crash the same commit can run twice.
 *
 * Invariant: a record's effect is visible in the sink iff a checkpoint containing it completed.
 */
import type { Operator, OperatorContext, StreamRecord } from '../operator.ts';
import type { SinkDefinition } from './sink.ts';

/** Identifies one sink instance; transaction names derive from it so restarts find their own. */
export interface SinkIdentity {
  readonly jobName: string;
  readonly sinkUid: string;
  readonly subtaskIndex: number;
}

export interface TwoPhaseCommitter<T, Txn> {
  /** Called once before anything else, and again for each new transaction after a pre-commit. */
  beginTransaction(): Promise<void>;
  write(records: readonly StreamRecord<T>[]): Promise<void>;
  /** Phase 1: make the open transaction durable but invisible; returns its JSON handle. */
  preCommit(checkpointId: number): Promise<Txn>;
  /** Phase 2: make it visible. Must succeed if it already committed (idempotent). */
  commit(txn: Txn): Promise<void>;
  /** Commit `committed` (recorded by the restored checkpoint), roll back all other leftovers of `identity`. */
  recover(committed: readonly Txn[]): Promise<void>;
  close(): Promise<void>;
}

export interface TwoPhaseCommitOptions {
  /** Attempts per commit before the job fails (and restores, which retries the commit). @default 8 */
  readonly commitAttempts?: number;
  /** @default 200 */
  readonly initialBackoffMs?: number;
  /** @default 10000 */
  readonly maxBackoffMs?: number;
}

interface PendingSnapshot<Txn> {
  readonly pending: readonly { readonly checkpointId: number; readonly txn: Txn }[];
}

export function twoPhaseCommitSink<T, Txn>(
  name: string,
  createCommitter: (identity: SinkIdentity, context: OperatorContext) => TwoPhaseCommitter<T, Txn>,
  options: TwoPhaseCommitOptions = {},
): SinkDefinition<T> {
  return { name, createOperator: () => twoPhaseCommitOperator(createCommitter, options) };
}

function twoPhaseCommitOperator<T, Txn>(
  createCommitter: (identity: SinkIdentity, context: OperatorContext) => TwoPhaseCommitter<T, Txn>,
  options: TwoPhaseCommitOptions,
): Operator<T, never> {
  let committer: TwoPhaseCommitter<T, Txn> | undefined;
  // Prepared but not yet committed, by the checkpoint that prepared them, oldest first.
  let pending: { checkpointId: number; txn: Txn }[] = [];
  const get = () => committer as TwoPhaseCommitter<T, Txn>;
  return {
    async open(context, restored) {
      committer = createCommitter({ jobName: context.jobName, sinkUid: context.uid, subtaskIndex: context.subtaskIndex }, context);
      const recorded = (restored as PendingSnapshot<Txn> | undefined)?.pending ?? [];
      await withRetry(() => get().recover(recorded.map((p) => p.txn)), options);
      await get().beginTransaction();
    },
    async processBatch(batch) {
      await get().write(batch);
    },
    async snapshotState(checkpointId) {
      const txn = await get().preCommit(checkpointId);
      pending.push({ checkpointId, txn });
      await get().beginTransaction();
      const snapshot: PendingSnapshot<Txn> = { pending: [...pending] };
      return snapshot;
    },
    async notifyCheckpointComplete(checkpointId) {
      const due = pending.filter((p) => p.checkpointId <= checkpointId);
      for (const p of due) await withRetry(() => get().commit(p.txn), options);
      pending = pending.filter((p) => p.checkpointId > checkpointId);
    },
    async close() {
      await committer?.close();
    },
  };
}

async function withRetry(action: () => Promise<void>, options: TwoPhaseCommitOptions): Promise<void> {
  const attempts = options.commitAttempts ?? 8;
  let delay = options.initialBackoffMs ?? 200;
  for (let attempt = 1; ; attempt++) {
    try {
      return await action();
    } catch (error) {
      if (attempt >= attempts) throw error;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, options.maxBackoffMs ?? 10_000);
    }
  }
}
