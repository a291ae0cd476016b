/**
 * `SubtaskLoop`: the task loop of one subtask of the job graph (the whole job at parallelism 1;
 * one per worker thread at N). It polls the subtask's sources round-robin and pushes every batch
 * depth-first through its operators (`OperatorRunner`, one per operator). Between two polls the loop injects
 * pending checkpoint barriers and delivers checkpoint-complete notifications, so operator code
 * never races with a commit.
 */
import { retiredSubtasks } from '../../checkpoints/index.ts';
import { locateError } from '../../state/index.ts';
import type { FreshStart, OperatorContext, OperatorMetrics } from '../../operators/operator.ts';
import { SourceOpenInterruptedError } from '../../operators/sources/source.ts';
import type { QueuedRecordDeadLetters } from '../../operators/record-dead-letters.ts';
import type { GraphNode, JobGraph } from '../graph.ts';
import type { KeyedExchange } from '../parallel/keyed-exchange.ts';
import { OperatorRunner, type Downstream, type RunnerHooks } from './operator-runner.ts';
import { restoredSnapshotOf, type RestoredTask } from './restore-assignment.ts';
import type { TaskSnapshot } from '../../checkpoints/index.ts';
import { SnapshotAcks, type KeyedBackend } from './snapshot-acks.ts';
import { SourceTask } from './source-task.ts';
import type { SinkSignals } from '../signals/sink-signals.ts';
import { WatermarkGenerator, type WatermarkSettings } from './watermark-generator.ts';

export type { KeyedBackend } from './snapshot-acks.ts';

export interface SubtaskLoopDeps {
  readonly jobName: string;
  readonly graph: JobGraph;
  readonly uids: Map<GraphNode, string>;
  /** Restored per-uid task state from the checkpoint we start from. */
  readonly restored: ReadonlyMap<string, RestoredTask>;
  createKeyedBackend(uid: string, restored: readonly unknown[] | undefined): Promise<KeyedBackend>;
  metricsFor(uid: string): OperatorMetrics;
  /** The dead-letter channel of an operator (records it cannot handle). @default none: such records fail the job */
  deadLettersFor?(uid: string): QueuedRecordDeadLetters;
  closeDeadLetters?(): Promise<void>;
  /** The task's snapshot for `checkpointId` (the coordinator's shape, checkpoint-metadata.ts). */
  acknowledge(checkpointId: number, snapshot: TaskSnapshot): void;
  /** The task cannot complete `checkpointId` (its snapshot failed): the coordinator aborts it. */
  decline(uid: string, checkpointId: number, reason: string): void;
  readonly hooks: Pick<RunnerHooks, 'recordsIn' | 'recordsOut' | 'watermarkAdvanced' | 'timeSpent'>;
  /** @default 100 */
  readonly pollWaitMs?: number;
  /** This runner is subtask `subtaskIndex` of `parallelism`. @default 0 of 1 */
  readonly subtaskIndex?: number;
  /** @default 1 */
  readonly parallelism?: number;
  /** The highest parallelism this job ever started at (checkpoints/parallelism-record.ts). @default parallelism */
  readonly highestParallelism?: number;
  /** The keyed exchange to the other subtasks; required when parallelism > 1. */
  readonly exchange?: KeyedExchange;
  /** Set when the job starts from no checkpoint (see OperatorContext.freshStart). */
  readonly freshStart?: FreshStart;
  /** Backlog and freshness of every sink (runtime/signals/sink-signals.ts). @default none */
  readonly signals?: SinkSignals;
}

export class SubtaskLoop {
  private readonly sources: SourceTask[] = [];
  private readonly runners = new Map<GraphNode, OperatorRunner>();
  private readonly keyed = new Map<OperatorRunner, KeyedBackend>();
  private readonly pendingBarriers: number[] = [];
  private readonly pendingNotifications: { checkpointId: number; completed: boolean }[] = [];
  private stopRequested = false;
  /** A graceful stop: stop polling, run `onStop` (final checkpoint, commits), leave inputs open. */
  private finalRequested = false;
  /** The source reader whose `open` is under way: a stop tells it to stop waiting (`interruptOpen`). */
  private opening: { interruptOpen?(): void } | undefined;
  private wake: (() => void) | undefined;
  /** Wakes a poll's wait for data when a checkpoint notification arrives (see `pollDeliveringNotifications`). */
  private notified: (() => void) | undefined;
  /** Asynchronous parts of keyed snapshots: they ack (or decline) when their file is durable. */
  private readonly snapshots: SnapshotAcks;

  constructor(private readonly deps: SubtaskLoopDeps) {
    this.snapshots = new SnapshotAcks(deps);
  }

  /** Called by the checkpoint coordinator: the barrier goes in at the next gap between polls. */
  requestBarrier(checkpointId: number): void {
    this.pendingBarriers.push(checkpointId);
  }

  notifyCheckpoint(checkpointId: number, completed: boolean): void {
    this.pendingNotifications.push({ checkpointId, completed });
    this.notified?.();
  }

  stop(): void {
    this.stopRequested = true;
    this.opening?.interruptOpen?.();
    this.wake?.();
  }

  /**
   * Graceful stop: at the next gap between polls the sources stop reading and `run`'s `onStop`
   * runs (a final checkpoint that sinks commit). Unlike the end of bounded input, no input ends:
   * windows do not fire early, and the job resumes from that checkpoint as if never stopped.
   */
  requestFinal(): void {
    this.finalRequested = true;
    this.opening?.interruptOpen?.();
    this.wake?.();
  }

  get watermarks(): { uid: string; watermark: number }[] {
    return [...this.runners.values()].map((r) => ({ uid: r.uid, watermark: r.currentWatermark }));
  }

  private get subtaskIndex(): number {
    return this.deps.subtaskIndex ?? 0;
  }

  private get parallelism(): number {
    return this.deps.parallelism ?? 1;
  }

  async open(): Promise<void> {
    const { graph } = this.deps;
    for (const node of graph.nodes)
      if (node.source === undefined) await this.located(node, () => this.openOperator(node));
    for (const node of graph.nodes)
      if (node.source !== undefined) await this.located(node, () => this.openSource(node));
    for (const node of graph.nodes) {
      const runner = this.runners.get(node);
      for (const consumer of graph.consumersOf(node)) {
        const target = this.runners.get(consumer.node);
        if (target === undefined) continue;
        const link = this.link(consumer.node, target, consumer.input, consumer.sideOutput);
        if (runner !== undefined) runner.downstream.push(link);
        else this.sources.find((s) => s.uid === this.uid(node))?.downstream.push(link);
      }
    }
  }

  /** An edge into `node`: direct, or through the keyed exchange when the node is keyed and runs on several subtasks. */
  private link(node: GraphNode, target: OperatorRunner, input: number, sideOutput: string | undefined): Downstream {
    const { exchange } = this.deps;
    if (node.keySelector === undefined || this.parallelism === 1) return { runner: target, input, sideOutput };
    if (exchange === undefined) throw new Error('a keyed operator at parallelism > 1 needs the keyed exchange');
    return { runner: exchange.sender(node.id, input, node.keySelector, target), input, sideOutput };
  }

  /** Runs until every source ended (bounded input), stop() was called, or requestFinal() ran `onStop`. */
  async run(onAllSourcesEnded?: () => Promise<void>, onStop?: () => Promise<void>): Promise<void> {
    const wait = this.deps.pollWaitMs ?? 100;
    let next = 0;
    while (!this.stopRequested) {
      this.snapshots.throwIfFailed();
      await this.deliverNotifications();
      await this.injectBarriers();
      if (this.finalRequested && onStop !== undefined) {
        await onStop();
        await this.deliverNotifications();
        break;
      }
      const live = this.sources.filter((s) => !s.ended);
      if (live.length === 0) {
        await onAllSourcesEnded?.();
        await this.deliverNotifications();
        break;
      }
      const source = live[next++ % live.length] as SourceTask;
      // With several sources a short wait keeps one quiet source from delaying the others.
      const maxWait = live.length > 1 ? Math.min(wait, 10) : wait;
      const exchange = this.deps.exchange;
      try {
        if (exchange === undefined) await this.pollDeliveringNotifications(source, maxWait);
        else await this.pollWhileExchanging(source, maxWait, exchange);
      } catch (error) {
        // Operators downstream located their own failures already; what is left is the source's.
        throw locateError(error, { operator: source.uid, subtask: this.subtaskIndex });
      }
      for (const runner of this.runners.values()) await runner.tick(Date.now());
    }
  }

  /**
   * Waits for a poll; a checkpoint notification that arrives meanwhile is delivered at once rather
   * than after the wait (up to `pollWaitMs` when the sources are quiet): a two-phase sink's commit,
   * and with it freshness, does not wait for the next record. Safe because no operator is inside
   * `processBatch` while the poll waits; barriers still go in only between polls, so a source's
   * snapshot never races with its own poll.
   */
  private async pollDeliveringNotifications(source: SourceTask, maxWaitMs: number): Promise<void> {
    let settled = false;
    const polled = source.reader.poll(maxWaitMs).finally(() => (settled = true));
    const done = polled.then(
      () => undefined,
      () => undefined,
    );
    for (;;) {
      if (!settled && this.pendingNotifications.length > 0) await this.deliverNotifications();
      if (settled) break;
      const arrived = new Promise<void>((resolve) => (this.notified = resolve));
      await Promise.race([done, arrived]);
      this.notified = undefined;
    }
    await source.deliver(await polled);
  }

  /** Waits for a poll, pushing what other subtasks send meanwhile; then pushes the poll's result. */
  private async pollWhileExchanging(source: SourceTask, maxWaitMs: number, exchange: KeyedExchange): Promise<void> {
    await exchange.drain();
    const pollStart = performance.now();
    let settled = false;
    const polled = source.reader.poll(maxWaitMs).finally(() => (settled = true));
    const done = polled.then(
      () => undefined,
      () => undefined,
    );
    let drained = 0;
    while (!settled) {
      await Promise.race([done, exchange.arrival()]);
      const drainStart = performance.now();
      await exchange.drain();
      drained += performance.now() - drainStart;
    }
    exchange.stats.add('pollWait', pollStart + drained);
    const deliverStart = performance.now();
    await source.deliver(await polled);
    exchange.stats.add('deliver', deliverStart);
  }

  /**
   * After this subtask's sources ended: keep serving the exchange, barriers and notifications
   * until `finished()` says the job is done (parallel execution only).
   */
  async serveUntil(finished: () => boolean, wake: () => Promise<void>): Promise<void> {
    const exchange = this.deps.exchange;
    while (!finished() && !this.stopRequested) {
      this.snapshots.throwIfFailed();
      await this.deliverNotifications();
      await this.injectBarriers();
      await exchange?.drain();
      for (const runner of this.runners.values()) await runner.tick(Date.now());
      if (finished() || this.stopRequested) break;
      await Promise.race([
        exchange?.arrival() ?? new Promise(() => undefined),
        wake(),
        new Promise((r) => setTimeout(r, 50)),
      ]);
    }
    await this.deliverNotifications();
  }

  /** Runs one barrier through right now (used for the final checkpoint of a bounded job). */
  async injectBarriers(): Promise<void> {
    while (this.pendingBarriers.length > 0) {
      const checkpointId = this.pendingBarriers.shift() as number;
      this.deps.signals?.barrierInjected(checkpointId);
      for (const source of this.sources) {
        const { snapshot, watermark } = await source.injectBarrier(checkpointId);
        this.deps.acknowledge(checkpointId, {
          operatorUid: source.uid,
          subtaskIndex: this.subtaskIndex,
          parallelism: this.parallelism,
          operator: {
            source: snapshot,
            ...(watermark === undefined || !Number.isFinite(watermark) ? {} : { watermark }),
          },
          bytes: JSON.stringify(snapshot).length,
        });
      }
    }
  }

  async deliverNotifications(): Promise<void> {
    while (this.pendingNotifications.length > 0) {
      const { checkpointId, completed } = this.pendingNotifications.shift() as {
        checkpointId: number;
        completed: boolean;
      };
      for (const runner of this.runners.values()) {
        const backend = this.keyed.get(runner)?.state;
        if (completed) {
          backend?.notifyCheckpointComplete(checkpointId);
          await runner.operator.notifyCheckpointComplete?.(checkpointId);
          this.deps.signals?.committed(runner.uid, checkpointId);
        } else {
          backend?.notifyCheckpointAborted(checkpointId);
          await runner.operator.notifyCheckpointAborted?.(checkpointId);
        }
      }
      if (completed) for (const source of this.sources) await source.reader.notifyCheckpointComplete?.(checkpointId);
    }
  }

  /** Closes operators after the final checkpoint of a bounded job. */
  async closeOperators(): Promise<void> {
    // Every operator gets closed (connections, open transactions) even when one before it fails to.
    let first: unknown;
    for (const runner of this.runners.values()) {
      try {
        await runner.operator.close?.();
      } catch (error) {
        first ??= locateError(error, { operator: runner.uid, subtask: this.subtaskIndex });
      }
    }
    if (first !== undefined) throw first;
  }

  /** Releases what the attempt opened (readers, keyed state and its RocksDB lock), whatever failed before. */
  async close(): Promise<void> {
    for (const source of this.sources) await source.reader.close().catch(() => undefined);
    // Closing a backend cancels its snapshot writes; their declines reach a stopped coordinator.
    for (const backend of this.keyed.values()) await backend.state.close().catch(() => undefined);
    await this.snapshots.settled();
    await this.deps.closeDeadLetters?.().catch(() => undefined);
    this.deps.signals?.close();
  }

  /** Snapshot files still being written by keyed operators (asynchronous parts); for tests. */
  get snapshotsInFlight(): number {
    return this.snapshots.inFlight;
  }

  private async located<T>(node: GraphNode, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      throw locateError(error, { operator: this.uid(node), subtask: this.subtaskIndex });
    }
  }

  private uid(node: GraphNode): string {
    return this.deps.uids.get(node) as string;
  }

  private async openOperator(node: GraphNode): Promise<void> {
    const uid = this.uid(node);
    const restored = this.deps.restored.get(uid);
    const operator = (node.factory as NonNullable<GraphNode['factory']>)();
    const info = { jobName: this.deps.jobName, uid, subtaskIndex: this.subtaskIndex, parallelism: this.parallelism };
    const restoredSnapshot = restoredSnapshotOf(restored, operator, info, node.name);
    const keyedBackend =
      node.keySelector === undefined ? undefined : await this.deps.createKeyedBackend(uid, restored?.keyed);
    const deadLetters = this.deps.deadLettersFor?.(uid);
    const hooks: RunnerHooks = {
      ...this.deps.hooks,
      subtaskIndex: this.subtaskIndex,
      snapshotTaken: (runner, checkpointId, snapshot) =>
        this.snapshots.taken(runner, keyedBackend, checkpointId, snapshot),
      ...(deadLetters === undefined ? {} : { flushDeadLetters: () => deadLetters.flush() }),
      ...(this.deps.signals?.isSink(uid) === true ? sinkHooks(this.deps.signals) : {}),
    };
    // Behind the keyed exchange every input is one channel per upstream subtask.
    const channels = node.keySelector === undefined ? node.inputs.length : node.inputs.length * this.parallelism;
    const runner = new OperatorRunner(
      uid,
      node.name,
      operator,
      channels,
      node.keySelector,
      hooks,
      restored?.watermark,
      keyedBackend?.state,
    );
    if (keyedBackend !== undefined) this.keyed.set(runner, keyedBackend);
    const context: OperatorContext = {
      ...info,
      keyedState: keyedBackend?.state,
      metrics: this.deps.metricsFor(uid),
      ...(deadLetters === undefined ? {} : { deadLetters }),
      now: () => Date.now(),
      retiredSubtasks: retiredSubtasks(
        this.subtaskIndex,
        this.parallelism,
        this.deps.highestParallelism ?? this.parallelism,
      ),
      ...(this.deps.freshStart === undefined ? {} : { freshStart: this.deps.freshStart }),
    };
    try {
      await operator.open?.(context, restoredSnapshot);
    } catch (error) {
      // Not among the runners yet, so closeOperators would miss it: release what the open got
      // (connections) here, or they outlive the attempt and keep the process alive.
      try {
        await operator.close?.();
      } catch {
        // the open's error is the one to report
      }
      throw error;
    }
    this.runners.set(node, runner);
  }

  private async openSource(node: GraphNode): Promise<void> {
    const uid = this.uid(node);
    const restored = this.deps.restored.get(uid);
    const definition = node.source as NonNullable<GraphNode['source']>;
    const metrics = this.deps.metricsFor(uid);
    const reader = definition.createReader({
      jobName: this.deps.jobName,
      uid,
      subtaskIndex: this.subtaskIndex,
      parallelism: this.parallelism,
      metrics,
    });
    this.opening = reader;
    if (this.stopRequested || this.finalRequested) reader.interruptOpen?.();
    try {
      await reader.open(restored?.source);
    } catch (error) {
      // It opened nothing the runner will close: release what it holds (connections).
      if (error instanceof SourceOpenInterruptedError) await reader.close().catch(() => undefined);
      throw error;
    } finally {
      this.opening = undefined;
    }
    const settings = node.sourceOptions as WatermarkSettings | undefined;
    const generator = settings === undefined ? undefined : new WatermarkGenerator(settings, restored?.watermark);
    // Every split the checkpoint knew holds the watermark back until it delivers again (or goes idle), as before the restore.
    generator?.register(restored?.source?.positions.map((p) => p.split) ?? [], Date.now());
    generator?.restoreCarried(restored?.source?.carriedWatermarks ?? [], Date.now());
    const task = new SourceTask(uid, node.name, reader, generator, (n) => {
      this.deps.hooks.recordsOut(uid, n);
      this.deps.signals?.sourceRecordsRead(n);
    });
    this.sources.push(task);
  }
}

function sinkHooks(signals: SinkSignals): Pick<RunnerHooks, 'sinkReceived' | 'barrierAligned'> {
  return {
    sinkReceived: (uid, sourceTs, count) => signals.received(uid, sourceTs, count),
    barrierAligned: (uid, checkpointId) => signals.barrierAligned(uid, checkpointId),
  };
}
