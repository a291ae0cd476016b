/**
 * The checkpoint side of one task loop's operators: at an aligned barrier an operator without
 * keyed state acks at once; a keyed operator runs its state's synchronous part (the loop waits
 * for that only) and acks when the state file is durable, while the loop processes the next
 * records (Flink's asynchronous snapshot phase). A failed write declines the checkpoint.
 */
import type { TaskSnapshot } from '../../checkpoints/index.ts';
import type { OperatorMetrics, OperatorSnapshot } from '../../operators/operator.ts';
import type { KeyedStateBackend } from '../../state/index.ts';
import type { OperatorRunner } from './operator-runner.ts';

/** The keyed state of one operator instance, as the runtime drives it. */
export interface KeyedBackend {
  /** Operators see it as a `KeyedStateView`; the runtime loads batches, notifies and closes it. */
  readonly state: KeyedStateBackend;
  /**
   * The synchronous part of the snapshot (the loop waits for it, at the barrier); `done` is the
   * asynchronous part, which writes the file while the loop processes the next records.
   */
  beginSnapshot(checkpointId: number): Promise<{ done: Promise<{ handle: unknown; bytes: number }> }>;
}

export interface SnapshotAckDeps {
  metricsFor(uid: string): OperatorMetrics;
  /** The task's snapshot for `checkpointId`, in the shape the coordinator stores (checkpoint-metadata.ts). */
  acknowledge(checkpointId: number, snapshot: TaskSnapshot): void;
  decline(uid: string, checkpointId: number, reason: string): void;
  /** @default 0 */
  readonly subtaskIndex?: number;
  /** @default 1 */
  readonly parallelism?: number;
}

export class SnapshotAcks {
  private readonly writes = new Set<Promise<void>>();
  /** Delivering an ack or decline threw (e.g. the port to the coordinator closed): the loop fails with it. */
  private failure: unknown;

  constructor(private readonly deps: SnapshotAckDeps) {}

  /** Asynchronous parts still running. */
  get inFlight(): number {
    return this.writes.size;
  }

  /** Called by the loop between polls. */
  throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Resolves once every asynchronous part acked or declined (closing the backends cancels them). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.writes]);
  }

  /** The operator took its own snapshot (sinks pre-committed) at barrier `checkpointId`. */
  async taken(
    runner: OperatorRunner,
    keyed: KeyedBackend | undefined,
    checkpointId: number,
    snapshot: OperatorSnapshot,
  ): Promise<void> {
    const operatorBytes = snapshot === undefined ? 0 : JSON.stringify(snapshot).length;
    const ack: TaskSnapshot = {
      operatorUid: runner.uid,
      subtaskIndex: this.deps.subtaskIndex ?? 0,
      parallelism: this.deps.parallelism ?? 1,
      operator: {
        ...(snapshot === undefined ? {} : { operator: snapshot }),
        // The watermark at the barrier, not at the end of the write.
        ...(Number.isFinite(runner.currentWatermark) ? { watermark: runner.currentWatermark } : {}),
      },
      bytes: operatorBytes,
    };
    if (keyed === undefined) return this.deps.acknowledge(checkpointId, ack);
    const metrics = this.deps.metricsFor(runner.uid);
    const syncStart = performance.now();
    const { done } = await keyed.beginSnapshot(checkpointId);
    const asyncStart = performance.now();
    metrics.observe('cdcflow_state_snapshot_sync_seconds', (asyncStart - syncStart) / 1000);
    const write = done
      .then(
        (written) => {
          metrics.observe('cdcflow_state_snapshot_async_seconds', (performance.now() - asyncStart) / 1000);
          this.deps.acknowledge(checkpointId, { ...ack, keyed: written.handle, bytes: operatorBytes + written.bytes });
        },
        (error: unknown) =>
          this.deps.decline(runner.uid, checkpointId, error instanceof Error ? error.message : String(error)),
      )
      .catch((error: unknown) => void (this.failure ??= error))
      .finally(() => this.writes.delete(write));
    this.writes.add(write);
  }
}
