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
export type RestoreSource = 'latest' | { readonly checkpointId: number } | { readonly savepoint: string } | { readonly path: string };

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
  readonly inFlight?: { readonly checkpointId: number; readonly kind: CheckpointKind; readonly state: CheckpointState; readonly missingTasks: string[] };
  readonly consecutiveFailures: number;
  readonly lastCompleted?: { readonly checkpointId: number; readonly completedAtMs: number };
}

interface SavepointRequest { readonly name: string | undefined; readonly kind?: CheckpointKind; resolve(m: CheckpointMetadata): void; reject(e: unknown): void }

const REMEMBERED_OUTCOMES = 64;

/**
 * Drives aligned-barrier checkpoints (see docs/checkpoint-commit-order.md): triggers one checkpoint
 * at a time, collects every task's ack, persists metadata durably, and only then notifies completion.
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
  private inFlight: CheckpointAttempt | undefined;
  private active: Promise<void> | undefined;
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
    if (this.running || this.active !== undefined || this.stopped) {
      throw new CheckpointError('restoreFrom() must be called before start() and triggerSavepoint()');
    }
    const { storage } = this.o;
    const restored = source === 'latest' ? await storage.latestCompleted() : await storage.load(refOf(source));
    const highest = Math.max(await storage.highestCheckpointId(), restored?.metadata.checkpointId ?? 0);
    this.nextId = highest + 1;
    if (restored !== undefined) {
      this.lastCompleted = { checkpointId: restored.metadata.checkpointId, completedAtMs: restored.metadata.completedAtMs };
    }
    return { restored, nextCheckpointId: this.nextId };
  }

  /** Begins periodic checkpoints, the first `intervalMs` from now. */
  start(): void {
    if (this.stopped) throw new CheckpointError('coordinator was stopped; create a new one to checkpoint again');
    this.running = true;
    this.scheduleNext();
  }

  /** Stops triggering, aborts a checkpoint still collecting acks, and waits for the in-flight one to settle. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.running = false;
    this.cancelPeriodic?.();
    for (const request of this.savepointQueue.splice(0)) {
      request.reject(new CheckpointError('coordinator stopped before the savepoint was triggered'));
    }
    this.inFlight?.abort('coordinator stopped');
    await this.active;
  }

  /** Takes a savepoint as soon as no checkpoint is in flight; resolves once its metadata is durable. */
  async triggerSavepoint(name?: string): Promise<CheckpointMetadata> {
    if (this.stopped) throw new CheckpointError('coordinator was stopped; cannot take a savepoint');
    if (name !== undefined) {
      assertValidName('savepoint name', name);
      const exists = await this.o.storage.load(name).then(() => true, () => false);
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
    if (outcome !== undefined && outcome !== 'accepted' && outcome !== 'invalid') this.ignored('ack', taskId, checkpointId, outcome);
  }

  /** A task cannot take part in `checkpointId`: the checkpoint is aborted. */
  decline(taskId: string, checkpointId: number, reason: string): void {
    this.accepting('decline', taskId, checkpointId)?.abort(`declined by ${taskId}: ${reason}`);
  }

  status(): CoordinatorStatus {
    const p = this.inFlight?.pending;
    return {
      running: this.running,
      busy: this.active !== undefined,
      ...(p === undefined ? {} : { inFlight: { checkpointId: p.checkpointId, kind: p.kind, state: p.state, missingTasks: p.missingTasks() } }),
      consecutiveFailures: this.consecutiveFailures,
      ...(this.lastCompleted === undefined ? {} : { lastCompleted: { ...this.lastCompleted } }),
    };
  }

  private scheduleNext(): void {
    this.cancelPeriodic?.();
    this.cancelPeriodic = undefined;
    if (this.stopped || this.active !== undefined) return;
    const request = this.savepointQueue.shift();
    if (request !== undefined) return this.launch(request.kind ?? 'savepoint', request);
    if (!this.running) return;
    const now = this.o.clock.now();
    const byInterval = (this.lastTriggeredAtMs ?? now) + this.o.intervalMs;
    const byPause = this.lastEndedAtMs === undefined ? now : this.lastEndedAtMs + this.o.minPauseMs;
    this.cancelPeriodic = this.o.clock.schedule(Math.max(0, byInterval - now, byPause - now), () => {
      this.cancelPeriodic = undefined;
      this.launch('checkpoint', undefined);
    });
  }

  private launch(kind: CheckpointKind, request: SavepointRequest | undefined): void {
    if (this.active !== undefined || this.stopped) {
      request?.reject(new CheckpointError('coordinator stopped before the savepoint was triggered'));
      return;
    }
    this.active = this.run(kind, request).finally(() => {
      this.active = undefined;
      this.lastEndedAtMs = this.o.clock.now();
      this.scheduleNext();
    });
  }

  private async run(kind: CheckpointKind, request: SavepointRequest | undefined): Promise<void> {
    let checkpointId: number;
    try {
      checkpointId = this.nextId ?? (await this.o.storage.highestCheckpointId()) + 1;
      this.nextId = checkpointId + 1;
      await this.o.storage.reserve(checkpointId);
    } catch (error) {
      this.o.onEvent({ type: 'trigger-failed', kind, error });
      request?.reject(error);
      if (kind === 'checkpoint') this.countFailure(`checkpoint storage unusable: ${messageOf(error)}`);
      return;
    }
    const savepointName = kind === 'savepoint' ? (request?.name ?? `savepoint-${checkpointId}`) : undefined;
    const attempt = new CheckpointAttempt(this.o, { checkpointId, kind, savepointName });
    this.inFlight = attempt;
    this.lastTriggeredAtMs = attempt.pending.triggeredAtMs;
    this.o.onEvent({ type: 'triggered', checkpointId, kind });
    // stop() ran while we awaited the storage above and found nothing in flight to abort.
    if (this.stopped) attempt.abort('coordinator stopped');
    await attempt.inject(this.o.triggerBarrier);
    const outcome = await attempt.outcome;
    this.inFlight = undefined;
    this.outcomes.set(checkpointId, outcome.status);
    if (this.outcomes.size > REMEMBERED_OUTCOMES) this.outcomes.delete(this.outcomes.keys().next().value as number);
    if (outcome.status === 'completed') await this.onCompleted(outcome.stored, request);
    else await this.onAborted(attempt.pending, outcome, request);
  }

  private async onCompleted(stored: StoredCheckpoint, request: SavepointRequest | undefined): Promise<void> {
    const { metadata } = stored;
    const id = metadata.checkpointId;
    this.lastCompleted = { checkpointId: id, completedAtMs: metadata.completedAtMs };
    if (metadata.kind === 'checkpoint') this.consecutiveFailures = 0;
    this.emitStats(id, metadata.kind, metadata.triggeredAtMs, totalBytes(metadata.tasks));
    await this.callSafely('notifyComplete', id, () => this.o.notifyComplete(id, metadata));
    request?.resolve(metadata);
    if (metadata.kind !== 'checkpoint') return;
    // Runs before the next trigger on purpose: files written for a checkpoint in flight are not
    // referenced by any metadata yet, and retention would delete them.
    try {
      this.o.onEvent({ type: 'retention', checkpointId: id, result: await this.o.storage.retain(this.o.retain) });
    } catch (error) {
      this.o.onEvent({ type: 'retention-failed', checkpointId: id, error });
    }
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
      this.o.onFailureThresholdExceeded(`${consecutiveFailures} consecutive checkpoint failures (tolerable: ${this.o.tolerableFailures}); last: ${reason}`);
    } catch (error) {
      this.o.onEvent({ type: 'callback-failed', callback: 'onFailureThresholdExceeded', checkpointId: -1, error });
    }
  }

  private emitStats(checkpointId: number, kind: CheckpointKind, triggeredAtMs: number, bytes: number, failureReason?: string): void {
    const durationMs = Math.max(0, this.o.clock.now() - triggeredAtMs);
    const status = failureReason === undefined ? 'completed' : 'aborted';
    this.o.onStats({ checkpointId, kind, durationMs, bytes, status, ...(failureReason === undefined ? {} : { failureReason }) });
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
    const flight = this.inFlight;
    if (flight === undefined || flight.pending.checkpointId !== checkpointId) {
      this.ignored(message, taskId, checkpointId, this.outcomes.get(checkpointId) ?? 'unknown-checkpoint');
      return undefined;
    }
    const state = flight.pending.state;
    if (state === 'ABORTED') return this.ignored(message, taskId, checkpointId, 'aborted');
    if (state !== 'TRIGGERED' && state !== 'ACKNOWLEDGING') return this.ignored(message, taskId, checkpointId, 'not-accepting');
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
