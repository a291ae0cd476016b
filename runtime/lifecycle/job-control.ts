/**
 * The job's lifecycle state and the operator's requests (stop, cancel), independent of which
 * attempt runs. A stop asked for while an attempt is restoring reaches it as soon as it is
 * started; one asked for during the back-off between restarts ends the wait at once (the restart
 * never happens). A stop that has not finished by its deadline cancels the attempt.
 */
import type { Logger } from 'pino';
import {
  JobNotRunningError,
  StopDeadlineExceededError,
  type JobEvent,
  type JobException,
  type JobState,
  type StopOptions,
  type StopResult,
} from './job-status.ts';

/** How the attempt should end once stopped: its final checkpoint, or a savepoint. */
export type FinalTarget =
  { readonly kind: 'checkpoint' } | { readonly kind: 'savepoint'; readonly name: string | undefined };

/** What the control needs from a running attempt. */
export interface ControlledAttempt {
  /** Stop gracefully at the next gap: final checkpoint/savepoint, commits, close. */
  requestFinal(target: FinalTarget): void;
  /** Hard stop: no final checkpoint. */
  stop(): void;
}

interface PendingStop {
  readonly target: FinalTarget;
  readonly deadlineMs: number;
  readonly promise: Promise<StopResult>;
  resolve(result: StopResult): void;
  reject(error: unknown): void;
  timer?: NodeJS.Timeout;
}

const MAX_EXCEPTIONS = 20;
/**
 * After a cancel (or a stop past its deadline) hard-stopped the attempt, how long it may take to
 * end before `execute()` stops waiting for it: a sink commit or checkpoint write that never
 * answers (a row lock held elsewhere, a hung broker) must not keep the job — or the REST call,
 * or `cdcflow run` — waiting forever.
 */
export const ABANDON_GRACE_MAX_MS = 5_000;

export class JobControl {
  private current: JobState = 'created';
  private attempt: ControlledAttempt | undefined;
  private pendingStop: PendingStop | undefined;
  private cancelRequested = false;
  private wakeBackOff: (() => void) | undefined;
  private overdue: StopDeadlineExceededError | undefined;
  /** Checkpoints completed since the stop was asked for: tells what an overdue stop gave up on. */
  private completedWhileStopping: number | undefined;
  private abandonTimer: NodeJS.Timeout | undefined;
  private resolveAbandoned: () => void = () => undefined;
  /** Resolves once a cancelled attempt has had its grace to end: `execute()` then stops waiting for it. */
  readonly abandoned = new Promise<void>((resolve) => (this.resolveAbandoned = resolve));
  private readonly listeners = new Set<(event: JobEvent) => void>();
  readonly exceptions: JobException[] = [];

  constructor(
    private readonly job: string,
    private readonly log: Logger,
    private readonly defaultDeadlineMs: number,
  ) {}

  get state(): JobState {
    return this.current;
  }

  /** A stop or cancel was asked for: no further restart. */
  get ending(): boolean {
    return this.pendingStop !== undefined || this.cancelRequested;
  }

  get cancelled(): boolean {
    return this.cancelRequested;
  }

  get stopTarget(): FinalTarget | undefined {
    return this.pendingStop?.target;
  }

  onEvent(listener: (event: JobEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: JobEvent): void {
    if (event.type === 'checkpoint' && this.pendingStop !== undefined) this.completedWhileStopping = event.checkpointId;
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A listener's failure is its own business.
      }
    }
  }

  setState(state: JobState): void {
    if (this.current === state) return;
    this.current = state;
    this.emit({ type: 'state', state, atMs: Date.now() });
  }

  recordException(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    const entry = { atMs: Date.now(), message };
    this.exceptions.push(entry);
    if (this.exceptions.length > MAX_EXCEPTIONS) this.exceptions.shift();
    this.emit({ type: 'exception', ...entry });
  }

  /** The attempt that now runs (undefined between attempts); a pending stop or cancel reaches it at once. */
  attach(attempt: ControlledAttempt | undefined): void {
    this.attempt = attempt;
    if (attempt === undefined) return;
    if (this.cancelRequested) attempt.stop();
    else if (this.pendingStop !== undefined) attempt.requestFinal(this.pendingStop.target);
  }

  stop(options: StopOptions = {}): Promise<StopResult> {
    if (this.pendingStop !== undefined) return this.pendingStop.promise;
    if (['stopped', 'finished', 'cancelled', 'failed'].includes(this.current))
      return Promise.reject(new JobNotRunningError(this.job, this.current));
    const target: FinalTarget =
      options.savepoint === undefined || options.savepoint === false
        ? { kind: 'checkpoint' }
        : { kind: 'savepoint', name: typeof options.savepoint === 'string' ? options.savepoint : undefined };
    const deadlineMs = options.deadlineMs ?? this.defaultDeadlineMs;
    let resolve: (result: StopResult) => void = () => undefined;
    let reject: (error: unknown) => void = () => undefined;
    const promise = new Promise<StopResult>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => undefined);
    const pending: PendingStop = { target, deadlineMs, promise, resolve, reject };
    this.pendingStop = pending;
    this.log.info(
      { target: target.kind, deadlineMs, state: this.current },
      target.kind === 'savepoint' ? 'stopping into a savepoint' : 'stopping with a final checkpoint',
    );
    if (this.current !== 'created') this.setState('stopping');
    pending.timer = setTimeout(() => {
      const gaveUpOn = this.pendingWork();
      this.log.error({ deadlineMs, gaveUpOn }, `stop deadline passed: cancelling the job; gave up on ${gaveUpOn}`);
      this.overdue = new StopDeadlineExceededError(deadlineMs, gaveUpOn);
      this.cancelRequested = true;
      this.attempt?.stop();
      this.wakeBackOff?.();
      this.startAbandonTimer(Math.min(ABANDON_GRACE_MAX_MS, Math.max(1_000, deadlineMs)));
      this.settleStop(this.overdue);
    }, deadlineMs);
    pending.timer.unref();
    this.attempt?.requestFinal(target);
    this.wakeBackOff?.();
    return promise;
  }

  cancel(): void {
    if (this.cancelRequested) return;
    this.log.warn(
      { state: this.current },
      'cancelling: no final checkpoint; sinks keep what they prepared for the next start',
    );
    this.cancelRequested = true;
    this.attempt?.stop();
    this.wakeBackOff?.();
    this.startAbandonTimer(ABANDON_GRACE_MAX_MS);
  }

  /** A stop that missed its deadline: `execute()` ends with it (non-zero exit) however the attempt ended. */
  get overdueStop(): StopDeadlineExceededError | undefined {
    return this.overdue;
  }

  /** What a stop is still waiting for, for the log line of a cancel or missed deadline. */
  pendingWork(): string {
    if (this.pendingStop === undefined) return 'the running attempt';
    const final = this.pendingStop.target.kind === 'savepoint' ? 'final savepoint' : 'final checkpoint';
    if (this.completedWhileStopping === undefined)
      return `the ${final} (not completed: a sink pre-commit, an operator snapshot or the checkpoint write did not answer)`;
    return `the sink commits of ${final} ${this.completedWhileStopping} (completed; its prepared transactions stay for the next start's recovery to commit)`;
  }

  private startAbandonTimer(graceMs: number): void {
    if (this.abandonTimer !== undefined) return;
    this.abandonTimer = setTimeout(() => this.resolveAbandoned(), graceMs);
    this.abandonTimer.unref();
  }

  /** The job ended: no abandoning is due any more. */
  dispose(): void {
    clearTimeout(this.abandonTimer);
  }

  /** The stop's outcome (the execute loop calls this once the job ended). */
  settleStop(outcome: StopResult | Error): void {
    const pending = this.pendingStop;
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    if (outcome instanceof Error) pending.reject(outcome);
    else pending.resolve(outcome);
  }

  /** Waits `ms` between restarts; a stop or cancel ends the wait at once. Returns whether to restart. */
  async backOff(ms: number): Promise<boolean> {
    if (this.ending) return false;
    this.setState('backing-off');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeBackOff = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeBackOff = undefined;
    return !this.ending;
  }
}
