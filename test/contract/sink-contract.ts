/**
 * One contract every checkpointed sink keeps, run against each real target the same way the
 * state backends share `test/unit/state/store-contract.ts`. The test plays the runtime: it feeds
 * batches, takes snapshots at barriers, completes (or skips) checkpoints, "crashes" a subtask
 * (closes it without committing) and restores a new one from a snapshot, as the job would.
 *
 * Two kinds of sink keep it differently:
 * - `on-commit` (two-phase: Postgres PREPARE, Kafka transactions, Redis staged batches, JSON-lines
 *   staged files): exactly the records of completed checkpoints are visible, each once.
 * - `on-write` (idempotent: Elasticsearch external versions): records may be visible before their
 *   checkpoint completes, but every record of a completed checkpoint is, and replay never
 *   duplicates one.
 */
import { describe, expect, it } from 'vitest';
import type { Operator, OperatorContext, OperatorSnapshot } from '../../operators/operator.ts';
import type { SinkDefinition } from '../../operators/sinks/sink.ts';
import type { TableChange } from '../../operators/table-change.ts';
import { streamPosition } from '../../state/change-position.ts';
import { RecordingMetrics } from '../support/operator-context.ts';
import { isOwnershipLost, registerOwnerEpoch } from '../../operators/sinks/owner-epoch.ts';

export interface ContractRow {
  readonly id: number;
  readonly status: string;
}
export type ContractChange = TableChange<number, ContractRow>;

/** One scope of a target: its own table, topic, prefix or index, so cases never see each other. */
export interface ScopedTarget {
  readonly sink: SinkDefinition<ContractChange>;
  /** What a reader of the target sees now, as `id:status`, one entry per visible record (a log sink lists duplicates). */
  visible(): Promise<string[]>;
  /** Transactions or stages of this scope still pending in the target (0 when the sink cannot tell). */
  leftovers(): Promise<number>;
  cleanup(): Promise<void>;
}

export interface SinkTarget {
  readonly name: string;
  readonly visibility: 'on-commit' | 'on-write';
  /** The sink checks the owner epoch of group mode (operators/sinks/owner-epoch.ts): the zombie case runs. */
  readonly fencesOwnerEpoch?: boolean;
  /** A fresh scope; `job` names the job the sink's transactions belong to. */
  scope(job: string): Promise<ScopedTarget>;
  /** Once, after every case of the target. */
  close?(): Promise<void>;
}

let lsn = 0;
/** A change whose id is unique in the run, so a duplicate anywhere shows. */
export function change(id: number, status = 'paid'): ContractChange {
  lsn += 1;
  return {
    kind: 'upsert',
    key: id,
    row: { id, status },
    previous: null,
    position: streamPosition(0, lsn),
    sourceTsMs: Date.now(),
  };
}
const label = (c: ContractChange) => `${c.key}:${c.kind === 'upsert' ? c.row.status : 'deleted'}`;

interface Subtask {
  readonly op: Operator<ContractChange, never>;
  write(...changes: ContractChange[]): Promise<void>;
  barrier(checkpointId: number): Promise<OperatorSnapshot>;
  complete(checkpointId: number): Promise<void>;
  /** What a kill -9 leaves: nothing committed, connections gone, pending work in the target. */
  crash(): Promise<void>;
}

function context(
  job: string,
  subtaskIndex: number,
  parallelism: number,
  retiredSubtasks?: readonly number[],
): OperatorContext {
  return {
    jobName: job,
    uid: 'contract-sink',
    subtaskIndex,
    parallelism,
    keyedState: undefined,
    metrics: new RecordingMetrics(),
    now: () => Date.now(),
    ...(retiredSubtasks === undefined ? {} : { retiredSubtasks }),
  };
}

async function open(
  target: ScopedTarget,
  job: string,
  restored?: OperatorSnapshot,
  subtaskIndex = 0,
  parallelism = 1,
  retired?: readonly number[],
): Promise<Subtask> {
  const op = target.sink.createOperator();
  await op.open?.(context(job, subtaskIndex, parallelism, retired), restored);
  const noOutput = { emit: () => undefined, emitSide: () => undefined };
  return {
    op,
    write: async (...changes) => {
      await op.processBatch(
        changes.map((value) => ({ value, timestamp: value.sourceTsMs })),
        noOutput,
      );
    },
    barrier: async (id) => (await op.snapshotState?.(id)) as OperatorSnapshot,
    complete: async (id) => {
      await op.notifyCheckpointComplete?.(id);
    },
    crash: async () => {
      await op.close?.();
    },
  };
}

/** The contract's cases for one target; call inside a `describe` of the target's own file. */
export function describeSinkContract(target: SinkTarget, nextJob: () => string): void {
  const onCommit = target.visibility === 'on-commit';

  /** `committed` must be visible, each once; `uncommitted` must not be (on-commit) or may be, once (on-write). */
  async function expectVisible(
    scope: ScopedTarget,
    committed: readonly ContractChange[],
    uncommitted: readonly ContractChange[] = [],
  ): Promise<void> {
    const seen = (await scope.visible()).sort();
    const want = committed.map(label);
    if (onCommit) {
      expect(seen).toEqual([...want].sort());
      return;
    }
    const maybe = new Set(uncommitted.map(label));
    const extra = seen.filter((s) => !want.includes(s));
    for (const w of want)
      expect(
        seen.filter((s) => s === w),
        `${w} visible once`,
      ).toHaveLength(1);
    for (const e of extra) expect(maybe.has(e), `${e} is no record of this case`).toBe(true);
    expect(new Set(seen).size, 'no record twice').toBe(seen.length);
  }

  async function withScope(body: (scope: ScopedTarget, job: string) => Promise<void>): Promise<void> {
    const job = nextJob();
    const scope = await target.scope(job);
    try {
      await body(scope, job);
    } finally {
      await scope.cleanup();
    }
  }

  describe(`${target.name}: two-phase sink contract`, () => {
    it(
      'pre-commit: a checkpoint’s records become visible when it completes' + (onCommit ? ', not before' : ''),
      async () => {
        await withScope(async (scope, job) => {
          const s = await open(scope, job);
          const a = [change(1), change(2)];
          await s.write(...a);
          await s.barrier(1);
          if (onCommit) await expectVisible(scope, []);
          await s.complete(1);
          await expectVisible(scope, a);
          await s.crash();
        });
      },
    );

    it('abort: the records of a checkpoint that never completes commit with the next one that does', async () => {
      await withScope(async (scope, job) => {
        const s = await open(scope, job);
        const a = change(10);
        const b = change(11);
        await s.write(a);
        await s.barrier(1); // aborted: no completion ever arrives for 1
        await s.write(b);
        await s.barrier(2);
        if (onCommit) await expectVisible(scope, []);
        await s.complete(2);
        await expectVisible(scope, [a, b]);
        await s.crash();
      });
    });

    it('recover: a restore commits what the restored checkpoint recorded (completed, crash before the commit)', async () => {
      await withScope(async (scope, job) => {
        const first = await open(scope, job);
        const a = change(20);
        await first.write(a);
        const snapshot = await first.barrier(1);
        await first.crash();
        if (onCommit) await expectVisible(scope, []);
        const second = await open(scope, job, snapshot);
        await expectVisible(scope, [a]);
        const b = change(21);
        await second.write(b);
        await second.barrier(2);
        await second.complete(2);
        await expectVisible(scope, [a, b]);
        await second.crash();
        expect(await scope.leftovers()).toBe(0);
      });
    });

    it('recover: a restore rolls back what no completed checkpoint recorded, and the replay writes it once', async () => {
      await withScope(async (scope, job) => {
        const first = await open(scope, job);
        const a = change(30);
        const b = change(31);
        await first.write(a);
        const snapshot = await first.barrier(1);
        await first.complete(1);
        await first.write(b);
        await first.barrier(2); // pre-committed, then the process died before checkpoint 2 completed
        await first.crash();
        const second = await open(scope, job, snapshot);
        await expectVisible(scope, [a], [b]);
        expect(await scope.leftovers()).toBe(0);
        await second.write(b); // the source replays from checkpoint 1's offsets
        await second.barrier(2);
        await second.complete(2);
        await expectVisible(scope, [a, b]);
        await second.crash();
      });
    });

    it('idempotent re-commit: committing a checkpoint again after a restore changes nothing', async () => {
      await withScope(async (scope, job) => {
        const first = await open(scope, job);
        const a = [change(40), change(41)];
        await first.write(...a);
        const snapshot = await first.barrier(1);
        await first.complete(1);
        await first.crash();
        const second = await open(scope, job, snapshot); // commits checkpoint 1 again
        await expectVisible(scope, a);
        await second.crash();
        const third = await open(scope, job, snapshot); // and once more
        await expectVisible(scope, a);
        await third.crash();
      });
    });

    it.runIf(target.fencesOwnerEpoch === true)(
      'zombie: after a newer owner’s recover, the older owner commits nothing (group mode)',
      async () => {
        await withScope(async (scope, job) => {
          // The epoch is read when the sink opens, as the group runner registers it before the task's pipeline opens.
          const unregisterOld = registerOwnerEpoch(job, { epoch: 1, owner: 'old owner' });
          const old = await open(scope, job);
          unregisterOld();
          await old.write(change(1, 'old'));
          const restored = await old.barrier(1);
          await old.complete(1);
          const beforeClaim = change(2, 'zombie');
          await old.write(beforeClaim);
          await old.barrier(2); // pre-committed (on-write: written) by the old owner, before the new owner claimed
          const unregisterNew = registerOwnerEpoch(job, { epoch: 2, owner: 'new owner' });
          const fresh = await open(scope, job, restored);
          unregisterNew();
          const mine = [change(1, 'new'), change(3, 'new')];
          await fresh.write(...mine);
          await fresh.barrier(2);
          await fresh.complete(2);
          // The old owner wakes up: its pending commit and every later write or commit are refused.
          const refused = (error: unknown) => {
            if (!isOwnershipLost(error)) throw error;
            return 'refused';
          };
          const late = await old.complete(2).then(() => 'nothing to commit', refused);
          expect(['refused', 'nothing to commit']).toContain(late);
          const next = await (async () => {
            await old.write(change(1, 'zombie'), change(4, 'zombie'));
            await old.barrier(3);
            await old.complete(3);
            return 'committed';
          })().catch(refused);
          expect(next).toBe('refused');
          await expectVisible(scope, mine, [beforeClaim]);
          await old.crash().catch(() => undefined);
          await fresh.crash();
        });
      },
    );

    it('retired subtasks: a restore at lower parallelism commits what they recorded and rolls back the rest', async () => {
      await withScope(async (scope, job) => {
        const zero = await open(scope, job, undefined, 0, 2);
        const one = await open(scope, job, undefined, 1, 2);
        const a = change(50);
        const b = change(51);
        const late = change(52);
        await zero.write(a);
        await one.write(b);
        const parts = [
          { subtaskIndex: 0, snapshot: await zero.barrier(1) },
          { subtaskIndex: 1, snapshot: await one.barrier(1) },
        ];
        await one.write(late);
        await one.barrier(2); // never completes
        await zero.crash();
        await one.crash();
        const op = scope.sink.createOperator();
        const merged =
          op.mergeRescaled?.(parts, { jobName: job, uid: 'contract-sink', subtaskIndex: 0, parallelism: 1 }) ??
          parts[0]?.snapshot;
        await op.open?.(context(job, 0, 1, [1]), merged);
        await expectVisible(scope, [a, b], [late]);
        expect(await scope.leftovers()).toBe(0);
        await op.close?.();
      });
    });
  });
}
