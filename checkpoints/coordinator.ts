import { resolveCoordinatorOptions } from './coordinator-options.ts';
import type { CheckpointCoordinatorOptions, IgnoredReason, ResolvedCoordinatorOptions } from './coordinator-options.ts';
import { CheckpointAttempt, messageOf } from './checkpoint-attempt.ts';
import type { AttemptOutcome } from './checkpoint-attempt.ts';
import { CheckpointAbortedError, CheckpointConfigError, CheckpointError } from './errors.ts';
import { assertValidName } from './names.ts';
import type { CheckpointState } from './lifecycle.ts';
import { totalBytes } from './checkpoint-metadata.ts';
import type { CheckpointKind, CheckpointMetadata, TaskSnapshot } from './checkpoint-metadata.ts';
import type { PendingCheckpoint } from './pending-checkpoint.ts';
import type { StoredCheckpoint } from './storage.ts';

/** What to restore from: the newest completed checkpoint or savepoint, or a specific one. */
export type RestoreSource =
  'latest' | { readonly checkpointId: number } | { readonly savepoint: string } | { readonly path: string };

export interface RestorePlan {
  /** Undefined when `latest` found nothing: a fresh start. */
  readonly restored: StoredCheckpoint | undefined;
  /** Id the next checkpoint will get; above every id ever used in storage. */
  readonly nextCheckpointId: number;
}

export interface CoordinatorStatus {
  /** Periodic checkpoints are on. */
  readonly running: boolean;
  /** A checkpoint or savepoint is in flight or still running its completion callbacks/retention. */
  readonly busy: boolean;
  /** Checkpoints triggered and not yet complete or aborted (at most `maxConcurrentCheckpoints`). */
  readonly inFlightCount: number;
  /** The oldest of them. */
  readonly inFlight?: {
    readonly checkpointId: number;
    readonly kind: CheckpointKind;
    readonly state: CheckpointState;
    readonly missingTasks: string[];
  };
  readonly consecutiveFailures: number;
  readonly lastCompleted?: { readonly checkpointId: number; readonly completedAtMs: number };
}

interface SavepointRequest {
  readonly name: string | undefined;
  readonly kind?: CheckpointKind;
  resolve(m: CheckpointMetadata): void;
  reject(e: unknown): void;
}

const REMEMBERED_OUTCOMES = 64;

/**
 * Drives aligned-barrier checkpoints (see docs/checkpoint-commit-order.md): triggers checkpoints
 * every interval (up to `maxConcurrentCheckpoints` in flight), collects every task's ack, persists
 * metadata durably and in checkpoint order, and only then notifies completion.
 *
 * @example
 * const coordinator = new CheckpointCoordinator({ jobName, storage, tasks, triggerBarrier, notifyComplete, notifyAborted, onFailureThresholdExceeded });
 * const { restored } = await coordinator.restoreFrom('latest');
 * coordinator.start();
 */
export class CheckpointCoordinator {
  private readonly o: ResolvedCoordinatorOptions;
  private running = false;
  private stopped = false;
  private nextId: number | undefined;
  /** Ids are handed out in launch order, even while storage is still asked for the highest one. */
  private idChain: Promise<unknown> = Promise.resolve();
  /** Attempts that still take acks or are persisting, by id (insertion order = id order). */
  private readonly flights = new Map<number, CheckpointAttempt>();
  /** Launched runs not finished yet (trigger → outcome → notification); at most `maxConcurrentCheckpoints`. */
  private runs = 0;
  /** A savepoint or a requested checkpoint runs alone: nothing else is triggered meanwhile. */
  private exclusiveRun = false;
  private readonly runPromises = new Set<Promise<void>>();
  /** Resolves when the most recently launched run has notified its outcome: the next one persists and notifies after it. */
  private lastDone: Promise<void> = Promise.resolve();
  /** Per in-flight checkpoint, the oldest completed checkpoint its tasks may build their state chain on. */
  private readonly bases = new Map<number, number>();
  private readonly recentCompleted: number[] = [];
  private retention: Promise<void> | undefined;
  private retentionDueFor: number | undefined;
  private cancelPeriodic: (() => void) | undefined;
  private lastTriggeredAtMs: number | undefined;
  private lastEndedAtMs: number | undefined;
  private consecutiveFailures = 0;
  private lastCompleted: { checkpointId: number; completedAtMs: number } | undefined;
  private readonly savepointQueue: SavepointRequest[] = [];
  private readonly outcomes = new Map<number, 'completed' | 'aborted'>();

  constructor(options: CheckpointCoordinatorOptions) {
    this.o = resolveCoordinatorOptions(options);
  }

  /** Picks the checkpoint to restore and fixes the id sequence above everything in storage. Call before start(). */
  async restoreFrom(source: RestoreSource = 'latest'): Promise<RestorePlan> {
    if (this.running || this.runs > 0 || this.stopped) {
      throw new CheckpointError('restoreFrom() must be called before start() and triggerSavepoint()');
    }
    const { storage } = this.o;
    const restored = source === 'latest' ? await storage.latestCompleted() : await storage.load(refOf(source));
    const highest = Math.max(await storage.highestCheckpointId(), restored?.metadata.checkpointId ?? 0);
    this.nextId = Math.max(highest + 1, this.o.firstCheckpointId);
    if (restored !== undefined) {
      this.lastCompleted = {
        checkpointId: restored.metadata.checkpointId,
        completedAtMs: restored.metadata.completedAtMs,
      };
      this.recentCompleted.push(restored.metadata.checkpointId);
    }
    return { restored, nextCheckpointId: this.nextId };
  }

  /** Begins periodic checkpoints, the first `intervalMs` from now. */
  start(): void {
    if (this.stopped) throw new CheckpointError('coordinator was stopped; create a new one to checkpoint again');
    this.running = true;
    this.scheduleNext();
  }

  /** Stops triggering, aborts checkpoints still collecting acks, and waits for those in flight (and retention) to settle. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.running = false;
    this.cancelPeriodic?.();
    for (const request of this.savepointQueue.splice(0)) {
      request.reject(new CheckpointError('coordinator stopped before the savepoint was triggered'));
    }
    for (const attempt of this.flights.values()) attempt.abort('coordinator stopped');
    await Promise.all([...this.runPromises]);
    await this.retention;
  }

  /** Takes a savepoint as soon as no checkpoint is in flight; resolves once its metadata is durable. */
  async triggerSavepoint(name?: string): Promise<CheckpointMetadata> {
    if (this.stopped) throw new CheckpointError('coordinator was stopped; cannot take a savepoint');
    if (name !== undefined) {
      assertValidName('savepoint name', name);
      const exists = await this.o.storage.load(name).then(
        () => true,
        () => false,
      );
      if (exists) throw new CheckpointConfigError(`savepoint "${name}" already exists; choose another name`);
      if (this.stopped) throw new CheckpointError('coordinator was stopped; cannot take a savepoint');
    }
    return new Promise<CheckpointMetadata>((resolve, reject) => {
      this.savepointQueue.push({ name, resolve, reject });
      this.scheduleNext();
    });
  }

  /**
   * Takes a regular checkpoint as soon as none is in flight (a graceful stop's final one);
   * resolves once it completed and its completion was notified, rejects if it aborted.
   */
  async triggerCheckpoint(): Promise<CheckpointMetadata> {
    if (this.stopped) throw new CheckpointError('coordinator was stopped; cannot take a checkpoint');
    return new Promise<CheckpointMetadata>((resolve, reject) => {
      this.savepointQueue.push({ name: undefined, kind: 'checkpoint', resolve, reject });
      this.scheduleNext();
    });
  }

  /** A task finished its snapshot for `checkpointId`. Acks for unknown or finished checkpoints are ignored (see onEvent). */
  acknowledge(taskId: string, checkpointId: number, snapshot: TaskSnapshot): void {
    const outcome = this.accepting('ack', taskId, checkpointId)?.acknowledge(taskId, snapshot);
    if (outcome !== undefined && outcome !== 'accepted' && outcome !== 'invalid')
      this.ignored('ack', taskId, checkpointId, outcome);
  }

  /** A task cannot take part in `checkpointId`: the checkpoint is aborted. */
  decline(taskId: string, checkpointId: number, reason: string): void {
    this.accepting('decline', taskId, checkpointId)?.abort(`declined by ${taskId}: ${reason}`);
  }

  status(): CoordinatorStatus {
    const p = this.flights.values().next().value?.pending;
    return {
      running: this.running,
      busy: this.runs > 0 || this.retention !== undefined,
      inFlightCount: this.flights.size,
      ...(p === undefined
        ? {}
        : { inFlight: { checkpointId: p.checkpointId, kind: p.kind, state: p.state, missingTasks: p.missingTasks() } }),
      consecutiveFailures: this.consecutiveFailures,
      ...(this.lastCompleted === undefined ? {} : { lastCompleted: { ...this.lastCompleted } }),
    };
  }

  private scheduleNext(): void {
    this.cancelPeriodic?.();
    this.cancelPeriodic = undefined;
    if (this.stopped) return;
    // A savepoint (or a requested checkpoint) waits until nothing is in flight, and periodic
    // checkpoints wait for it: it runs alone.
    if (this.savepointQueue.length > 0) {
      const request = this.runs === 0 ? this.savepointQueue.shift() : undefined;
      if (request !== undefined) this.launch(request.kind ?? 'savepoint', request);
      return;
    }
    if (!this.running || this.exclusiveRun || this.runs >= this.o.maxConcurrentCheckpoints) return;
    // A pause between checkpoints means one at a time, as in Flink.
    if (this.o.minPauseMs > 0 && this.runs > 0) return;
    const now = this.o.clock.now();
    // Trigger to trigger: a checkpoint that takes longer than the interval does not push the next one back
    // while there is room for another in flight.
    const byInterval = (this.lastTriggeredAtMs ?? now) + this.o.intervalMs;
    const byPause = this.lastEndedAtMs === undefined ? now : this.lastEndedAtMs + this.o.minPauseMs;
    this.cancelPeriodic = this.o.clock.schedule(Math.max(0, byInterval - now, byPause - now), () => {
      this.cancelPeriodic = undefined;
      this.launch('checkpoint', undefined);
    });
  }

  private launch(kind: CheckpointKind, request: SavepointRequest | undefined): void {
    if (this.stopped) {
      request?.reject(new CheckpointError('coordinator stopped before the savepoint was triggered'));
      return;
    }
    const exclusive = request !== undefined;
    this.runs += 1;
    if (exclusive) this.exclusiveRun = true;
    this.lastTriggeredAtMs = this.o.clock.now();
    const previousDone = this.lastDone;
    let markDone: () => void = () => undefined;
    this.lastDone = new Promise<void>((resolve) => (markDone = resolve));
    const id = this.allocateId();
    const run: Promise<void> = this.run(kind, request, id, previousDone, markDone).finally(() => {
      markDone();
      this.runs -= 1;
      if (exclusive) this.exclusiveRun = false;
      this.runPromises.delete(run);
      this.lastEndedAtMs = this.o.clock.now();
      this.scheduleNext();
    });
    this.runPromises.add(run);
    this.scheduleNext();
  }

  /** The next id, in launch order; rejects if the storage cannot tell the highest id used. */
  private allocateId(): Promise<number> {
    const id = this.idChain.then(async () => {
      const next = this.nextId ?? Math.max((await this.o.storage.highestCheckpointId()) + 1, this.o.firstCheckpointId);
      this.nextId = next + 1;
      return next;
    });
    this.idChain = id.catch(() => undefined);
    return id;
  }

  /**
   * One checkpoint from trigger to notification. Several may run at once (`maxConcurrentCheckpoints`),
   * but each persists its metadata and notifies only after the one launched before it has notified
   * its outcome: sinks commit in checkpoint order, and a newer checkpoint is never complete while
   * an older one could still become complete after it.
   */
  private async run(
    kind: CheckpointKind,
    request: SavepointRequest | undefined,
    idPromise: Promise<number>,
    previousDone: Promise<void>,
    markDone: () => void,
  ): Promise<void> {
    let checkpointId: number;
    try {
      checkpointId = await idPromise;
      await this.o.storage.reserve(checkpointId);
    } catch (error) {
      this.o.onEvent({ type: 'trigger-failed', kind, error });
      request?.reject(error);
      await previousDone;
      if (kind === 'checkpoint') this.countFailure(`checkpoint storage unusable: ${messageOf(error)}`);
      return;
    }
    const savepointName = kind === 'savepoint' ? (request?.name ?? `savepoint-${checkpointId}`) : undefined;
    const attempt = new CheckpointAttempt(this.o, { checkpointId, kind, savepointName }, previousDone);
    this.flights.set(checkpointId, attempt);
    this.bases.set(checkpointId, this.possibleBase());
    this.o.onEvent({ type: 'triggered', checkpointId, kind });
    // stop() ran while we awaited the storage above and found nothing in flight to abort.
    if (this.stopped) attempt.abort('coordinator stopped');
    await attempt.inject(this.o.triggerBarrier);
    const outcome = await attempt.outcome;
    this.flights.delete(checkpointId);
    this.outcomes.set(checkpointId, outcome.status);
    if (this.outcomes.size > REMEMBERED_OUTCOMES) this.outcomes.delete(this.outcomes.keys().next().value as number);
    // Notifications go out in checkpoint order (an abort of n+1 may be known before n completes).
    await previousDone;
    if (outcome.status === 'completed') await this.onCompleted(outcome.stored, request);
    else await this.onAborted(attempt.pending, outcome, request);
    this.bases.delete(checkpointId);
    markDone();
    if (outcome.status === 'completed' && outcome.stored.metadata.kind === 'checkpoint')
      this.requestRetention(checkpointId);
  }

  /**
   * The oldest completed checkpoint whose state chain a task may extend for a checkpoint triggered
   * now: the newest completed one, or the one before it if a task has not yet processed the newest
   * notification when the barrier reaches it. Retention keeps both until this checkpoint is settled.
   */
  private possibleBase(): number {
    return this.recentCompleted.at(-2) ?? this.recentCompleted.at(-1) ?? 0;
  }

  /**
   * Retention runs beside the next checkpoints, one run at a time, never on the path from one
   * trigger to the next. Files of checkpoints in flight are safe: the storage never deletes a
   * state file named after a checkpoint newer than the newest completed one, and it keeps every
   * checkpoint an in-flight one may build on.
   */
  private requestRetention(checkpointId: number): void {
    this.retentionDueFor = checkpointId;
    if (this.retention !== undefined) return;
    this.retention = (async () => {
      while (this.retentionDueFor !== undefined) {
        const id = this.retentionDueFor;
        this.retentionDueFor = undefined;
        try {
          const keepFrom = this.bases.size === 0 ? undefined : Math.min(...this.bases.values());
          this.o.onEvent({
            type: 'retention',
            checkpointId: id,
            result: await this.o.storage.retain(this.o.retain, keepFrom === undefined ? {} : { keepFrom }),
          });
        } catch (error) {
          this.o.onEvent({ type: 'retention-failed', checkpointId: id, error });
        }
      }
    })().finally(() => {
      this.retention = undefined;
    });
  }

  private async onCompleted(stored: StoredCheckpoint, request: SavepointRequest | undefined): Promise<void> {
    const { metadata } = stored;
    const id = metadata.checkpointId;
    this.lastCompleted = { checkpointId: id, completedAtMs: metadata.completedAtMs };
    if (metadata.kind === 'checkpoint') {
      this.recentCompleted.push(id);
      if (this.recentCompleted.length > 2) this.recentCompleted.shift();
    }
    if (metadata.kind === 'checkpoint') this.consecutiveFailures = 0;
    this.emitStats(id, metadata.kind, metadata.triggeredAtMs, totalBytes(metadata.tasks));
    await this.callSafely('notifyComplete', id, () => this.o.notifyComplete(id, metadata));
    request?.resolve(metadata);
  }

  private async onAborted(
    pending: PendingCheckpoint,
    outcome: AttemptOutcome & { status: 'aborted' },
    request: SavepointRequest | undefined,
  ): Promise<void> {
    const { checkpointId: id, kind } = pending;
    this.emitStats(id, kind, pending.triggeredAtMs, totalBytes(pending.snapshots()), outcome.reason);
    await this.callSafely('notifyAborted', id, () => this.o.notifyAborted(id, outcome.reason));
    request?.reject(new CheckpointAbortedError(id, outcome.reason, { cause: outcome.cause }));
    if (kind === 'checkpoint') this.countFailure(`checkpoint ${id} aborted: ${outcome.reason}`);
  }

  private countFailure(reason: string): void {
    this.consecutiveFailures += 1;
    if (this.consecutiveFailures <= this.o.tolerableFailures) return;
    const consecutiveFailures = this.consecutiveFailures;
    // Reset so a restart strategy that keeps this coordinator gets a fresh budget.
    this.consecutiveFailures = 0;
    this.o.onEvent({ type: 'failure-threshold-exceeded', consecutiveFailures, reason });
    try {
      this.o.onFailureThresholdExceeded(
        `${consecutiveFailures} consecutive checkpoint failures (tolerable: ${this.o.tolerableFailures}); last: ${reason}`,
      );
    } catch (error) {
      this.o.onEvent({ type: 'callback-failed', callback: 'onFailureThresholdExceeded', checkpointId: -1, error });
    }
  }

  private emitStats(
    checkpointId: number,
    kind: CheckpointKind,
    triggeredAtMs: number,
    bytes: number,
    failureReason?: string,
  ): void {
    const durationMs = Math.max(0, this.o.clock.now() - triggeredAtMs);
    const status = failureReason === undefined ? 'completed' : 'aborted';
    this.o.onStats({
      checkpointId,
      kind,
      durationMs,
      bytes,
      status,
      ...(failureReason === undefined ? {} : { failureReason }),
    });
  }

  private async callSafely(callback: string, checkpointId: number, fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (error) {
      this.o.onEvent({ type: 'callback-failed', callback, checkpointId, error });
    }
  }

  /** The in-flight checkpoint if it still takes messages from `taskId`; otherwise reports why not. */
  private accepting(message: 'ack' | 'decline', taskId: string, checkpointId: number): CheckpointAttempt | undefined {
    const flight = this.flights.get(checkpointId);
    if (flight === undefined) {
      this.ignored(message, taskId, checkpointId, this.outcomes.get(checkpointId) ?? 'unknown-checkpoint');
      return undefined;
    }
    const state = flight.pending.state;
    if (state === 'ABORTED') return this.ignored(message, taskId, checkpointId, 'aborted');
    if (state !== 'TRIGGERED' && state !== 'ACKNOWLEDGING')
      return this.ignored(message, taskId, checkpointId, 'not-accepting');
    if (!flight.pending.isExpected(taskId)) return this.ignored(message, taskId, checkpointId, 'unknown-task');
    return flight;
  }

  private ignored(message: 'ack' | 'decline', taskId: string, checkpointId: number, reason: IgnoredReason): undefined {
    this.o.onEvent({ type: 'ignored-message', message, taskId, checkpointId, reason });
    return undefined;
  }
}

function refOf(source: Exclude<RestoreSource, 'latest'>): number | string {
  if ('checkpointId' in source) return source.checkpointId;
  // A bare name never contains "/", so a path always resolves as a path.
  if ('savepoint' in source) {
    assertValidName('savepoint name', source.savepoint);
    return source.savepoint;
  }
  return source.path.includes('/') ? source.path : `./${source.path}`;
}
