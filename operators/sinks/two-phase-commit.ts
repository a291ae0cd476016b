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
import { createHash } from 'node:crypto';
import { retryWithBackoff } from '../../state/backoff.ts';
import { CdcflowError } from '../../state/errors.ts';
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
  /** Phase 2: make it visible. Must succeed if it already committed (idempotent). `checkpointId` prepared it. */
  commit(txn: Txn, checkpointId: number): Promise<void>;
  /** Commit `committed` (recorded by the restored checkpoint), roll back all other leftovers of `identity`. */
  recover(committed: readonly Txn[]): Promise<void>;
  /**
   * What this job's sink (every subtask) left prepared or fenced in the external system, with the
   * checkpoint that prepared each when known: a fresh start refuses to discard them (see
   * `OperatorContext.freshStart`). Optional: sinks that cannot tell are not checked.
   */
  leftovers?(): Promise<readonly SinkLeftover[]>;
  /** Discards what `leftovers` lists (a fresh start with `discardSinkTransactions`). */
  discardLeftovers?(): Promise<void>;
  close(): Promise<void>;
}

export interface SinkLeftover {
  /** Human-readable: what and where (`postgres prepared transaction 'job:sink:0:42'`). */
  readonly name: string;
  readonly checkpointId: number | undefined;
}

/**
 * A start with no checkpoint found transactions of this job in a sink that no checkpoint here
 * accounts for. Rolling them back could lose the records of a checkpoint that completed
 * elsewhere (another checkpoint folder), so the start is refused.
 */
export class FreshStartRefusedError extends CdcflowError {
  constructor(
    readonly sink: string,
    readonly found: readonly SinkLeftover[],
  ) {
    const shown =
      found
        .slice(0, 5)
        .map((f) => f.name)
        .join(', ') + (found.length > 5 ? ` and ${found.length - 5} more` : '');
    super(
      `refusing to start job fresh: no checkpoint was found, but sink '${sink}' holds ${found.length} prepared transaction(s) or fence(s) of this job that no checkpoint here knows: ${shown}. ` +
        'They may belong to a checkpoint that completed under another checkpoint folder; rolling them back would lose its records. ' +
        'Either restore that checkpoint (restore: { path: PATH } / --from-checkpoint PATH), or discard them (discardSinkTransactions: true / --discard-sink-transactions).',
      { domain: 'user', retriable: false },
    );
  }
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
  /**
   * Only in a snapshot merged after a restore at another parallelism: what old subtasks that no
   * longer exist recorded. This subtask recovers them under their own identity (commits what
   * they recorded, rolls back their other leftovers) — never another live subtask's.
   */
  readonly foreign?: readonly { readonly subtaskIndex: number; readonly pending: PendingSnapshot<Txn>['pending'] }[];
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
      const snapshot = restored as PendingSnapshot<Txn> | undefined;
      committer = createCommitter(
        { jobName: context.jobName, sinkUid: context.uid, subtaskIndex: context.subtaskIndex },
        context,
      );
      await refuseUnknownLeftovers(get(), context);
      // Old subtasks the restored checkpoint recorded (rescaled), then retired ones it does not
      // know: a wider run that died before its first checkpoint left their transactions in no
      // checkpoint, so everything they left is rolled back (and, for Kafka, fenced).
      const foreign = snapshot?.foreign ?? [];
      const unrecorded = (context.retiredSubtasks ?? [])
        .filter((j) => !foreign.some((f) => f.subtaskIndex === j))
        .map((j) => ({ subtaskIndex: j, pending: [] }));
      for (const old of [...foreign, ...unrecorded]) {
        const previous = createCommitter(
          { jobName: context.jobName, sinkUid: context.uid, subtaskIndex: old.subtaskIndex },
          context,
        );
        try {
          await withRetry(() => previous.recover(old.pending.map((p) => p.txn)), options);
        } finally {
          await previous.close();
        }
      }
      const recorded = snapshot?.pending ?? [];
      await withRetry(() => get().recover(recorded.map((p) => p.txn)), options);
      await get().beginTransaction();
    },
    mergeRescaled(parts, info) {
      const pendingOf = (snapshot: unknown) => (snapshot as PendingSnapshot<Txn> | undefined)?.pending ?? [];
      const merged: PendingSnapshot<Txn> = {
        pending: parts.filter((p) => p.subtaskIndex === info.subtaskIndex).flatMap((p) => pendingOf(p.snapshot)),
        foreign: parts
          .filter((p) => p.subtaskIndex !== info.subtaskIndex)
          .map((p) => ({ subtaskIndex: p.subtaskIndex, pending: pendingOf(p.snapshot) })),
      };
      return merged;
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
      for (const p of due) await withRetry(() => get().commit(p.txn, p.checkpointId), options);
      pending = pending.filter((p) => p.checkpointId > checkpointId);
    },
    async close() {
      await committer?.close();
    },
  };
}

/** On a fresh start (no checkpoint), before anything is rolled back: see `FreshStartRefusedError`. */
async function refuseUnknownLeftovers<T, Txn>(
  committer: TwoPhaseCommitter<T, Txn>,
  context: OperatorContext,
): Promise<void> {
  const fresh = context.freshStart;
  if (fresh === undefined) return;
  // Every subtask's leftovers, not only this one's: one of a subtask this run does not have holds row locks forever.
  if (fresh.discardSinkTransactions) return committer.discardLeftovers?.();
  if (committer.leftovers === undefined) return;
  const unknown = (await committer.leftovers()).filter(
    (l) => l.checkpointId === undefined || l.checkpointId > fresh.highestKnownCheckpointId,
  );
  if (unknown.length > 0) throw new FreshStartRefusedError(context.uid, unknown);
}

/** Commits and recoveries go through the job's one back-off helper; a non-retriable error fails at once. */
async function withRetry(action: () => Promise<void>, options: TwoPhaseCommitOptions): Promise<void> {
  await retryWithBackoff(() => action(), {
    maxAttempts: options.commitAttempts ?? 8,
    initialDelayMs: options.initialBackoffMs ?? 200,
    maxDelayMs: options.maxBackoffMs ?? 10_000,
  });
}

/**
 * `<job>:<sinkUid>:<subtask>`, safe to embed in transaction names (Postgres gids, Redis keys,
 * Kafka transactional ids) and deterministic, so a restarted job finds its own leftovers.
 * Characters outside `[A-Za-z0-9_.-]` become `_` and a component that had any gets a hash of its
 * original appended (so `a:b` and `a_b` stay distinct); past `maxLength` job and uid are cut and a
 * hash of both appended. A name never has `:` inside a component, so `name + ':'` is a prefix of
 * this instance's transaction names only — never of another instance's.
 */
export function sinkInstanceName(identity: SinkIdentity, maxLength = 160): string {
  const job = safeComponent(identity.jobName);
  const uid = safeComponent(identity.sinkUid);
  const subtask = String(identity.subtaskIndex);
  const full = `${job}:${uid}:${subtask}`;
  if (full.length <= maxLength) return full;
  const room = maxLength - subtask.length - 2 - 9;
  if (room < 8) throw new Error(`sinkInstanceName: maxLength ${maxLength} is too small`);
  const jobPart = job.slice(0, Math.min(job.length, Math.floor(room / 2)));
  return `${jobPart}:${uid.slice(0, room - jobPart.length)}-${shortHash(`${identity.jobName}\0${identity.sinkUid}`)}:${subtask}`;
}

function safeComponent(text: string): string {
  const safe = text.replace(/[^A-Za-z0-9_.-]/g, '_');
  return safe === text && safe !== '' ? safe : `${safe}-${shortHash(text)}`;
}

function shortHash(text: string): string {
  return createHash('sha1').update(text).digest('hex').slice(0, 8);
}

/** A sink transaction reached a phase: for progress lines, tests and tracing (sinks' `onTransaction` option). */
export interface SinkTransactionEvent {
  /** `prepared`: durable but invisible (PREPARE, staged batch); `committed`: visible. */
  readonly phase: 'prepared' | 'committed';
  readonly checkpointId: number;
  /** Distinct keys (or records) in the transaction. */
  readonly records: number;
}
