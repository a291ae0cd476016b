/**
 * A CheckpointCoordinator on a fake clock and a temp LocalCheckpointStorage, recording every callback
 * in order; shared by the coordinator unit tests.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { CheckpointCoordinator } from '../../checkpoints/coordinator.ts';
import type {
  CheckpointCoordinatorOptions,
  CheckpointEvent,
  CheckpointStats,
} from '../../checkpoints/coordinator-options.ts';
import type { CheckpointKind } from '../../checkpoints/checkpoint-metadata.ts';
import { LocalCheckpointStorage } from '../../checkpoints/local-storage.ts';
import { FakeClock, makeTempDir, snapshot, waitFor, writeStateFile } from '../unit/checkpoints/helpers.ts';

export const HARNESS_JOB = 'orders';
export const HARNESS_TASKS = ['src#0', 'map#0'];

/** Lets pending promise callbacks and I/O completions run; a bounded number of turns, not a delay. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

export const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

export type CoordinatorHarness = ReturnType<typeof buildHarness>;

/**
 * Registers a fresh temp directory per test (and stops every coordinator built in it afterwards);
 * `harness` builds a coordinator there with `intervalMs` 1000 and `timeoutMs` 5000 unless overridden.
 */
export function useCoordinatorHarness(defaults: Partial<CheckpointCoordinatorOptions> = {}): {
  harness: (overrides?: Partial<CheckpointCoordinatorOptions>) => CoordinatorHarness;
  dir: () => string;
} {
  let dir = '';
  let cleanup: () => Promise<void> = async () => undefined;
  const coordinators: CheckpointCoordinator[] = [];
  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
  });
  afterEach(async () => {
    for (const c of coordinators.splice(0)) await c.stop();
    await cleanup();
  });
  return {
    harness: (overrides = {}) => {
      const h = buildHarness(dir, { ...defaults, ...overrides });
      coordinators.push(h.coordinator);
      return h;
    },
    dir: () => dir,
  };
}

function buildHarness(dir: string, overrides: Partial<CheckpointCoordinatorOptions>) {
  const clock = new FakeClock();
  const storage = new LocalCheckpointStorage({ directory: dir, jobName: HARNESS_JOB });
  const log: string[] = [];
  const barriers: { id: number; kind: CheckpointKind }[] = [];
  const stats: CheckpointStats[] = [];
  const events: CheckpointEvent[] = [];
  const thresholds: string[] = [];
  const coordinator = new CheckpointCoordinator({
    jobName: HARNESS_JOB,
    storage,
    clock,
    tasks: HARNESS_TASKS,
    intervalMs: 1000,
    timeoutMs: 5000,
    triggerBarrier: (id, kind) => {
      barriers.push({ id, kind });
    },
    notifyComplete: async (id) => {
      // Completion must only be announced once the metadata is durable on disk (a savepoint's lives
      // under savepoints/, not chk-<id>/); a sink commits everything up to `id`.
      const durable = await exists(join(storage.fileRoot, `chk-${id}`, '_metadata'));
      log.push(`complete:${id}:${durable ? 'durable' : 'savepoint'}`);
    },
    notifyAborted: (id, reason) => {
      log.push(`aborted:${id}:${reason}`);
    },
    onFailureThresholdExceeded: (reason) => thresholds.push(reason),
    onStats: (s) => stats.push(s),
    onEvent: (e) => events.push(e),
    ...overrides,
  });
  const waitBarrier = (n: number) => waitFor(() => barriers.length >= n, `barrier #${n}`);
  const waitStats = (n: number) => waitFor(() => stats.length >= n, `stats #${n}`);
  const snapshotOf = (task: string, id: number, files: string[]) =>
    task === 'src#0'
      ? snapshot(task, id, [], { source: { positions: [{ split: 'orders-0', position: String(id * 10) }] } })
      : snapshot(task, id, files);
  /** One task's ack, after writing the state files it names. */
  const ack = async (task: string, id: number, files: string[] = []) => {
    for (const f of files) await writeStateFile(storage.fileRoot, f);
    coordinator.acknowledge(task, id, snapshotOf(task, id, files));
  };
  /** Every task's ack (the files go to map#0), both sent once the files are written. */
  const ackAll = async (id: number, files: string[] = []) => {
    for (const f of files) await writeStateFile(storage.fileRoot, f);
    coordinator.acknowledge('src#0', id, snapshotOf('src#0', id, []));
    coordinator.acknowledge('map#0', id, snapshotOf('map#0', id, files));
  };
  // Periodic timer armed and nothing in flight: advancing the clock now triggers the next checkpoint.
  const idle = () => waitFor(() => clock.pendingTimers === 1 && !coordinator.status().busy, 'coordinator idle');
  /** Starts the coordinator and lets `n` periodic checkpoints go out, one interval apart. */
  const startCheckpoints = async (n: number) => {
    coordinator.start();
    for (let i = 1; i <= n; i++) {
      clock.advance(1000);
      await waitBarrier(i);
    }
  };
  const barrierIds = () => barriers.map((b) => b.id);
  return {
    clock,
    storage,
    coordinator,
    log,
    barriers,
    barrierIds,
    stats,
    events,
    thresholds,
    waitBarrier,
    waitStats,
    ack,
    ackAll,
    idle,
    startCheckpoints,
  };
}
