/**
 * The job's lifecycle state and the operator's requests (stop, cancel), independent of which
 * attempt runs. A stop asked for while an attempt is restoring reaches it as soon as it is
 * started; one asked for during the back-off between restarts ends the wait at once (the restart
 * never happens). A stop that has not finished by its deadline cancels the attempt.
 */
import type { Logger } from 'pino';
import { JobNotRunningError, StopDeadlineExceededError, type JobEvent, type JobException, type JobState, type StopOptions, type StopResult } from './job-status.ts';

/** How the attempt should end once stopped: its final checkpoint, or a savepoint. */
export type FinalTarget = { readonly kind: 'checkpoint' } | { readonly kind: 'savepoint'; readonly name: string | undefined };

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

export class JobControl {
  private current: JobState = 'created';
  private attempt: ControlledAttempt | undefined;
  private pendingStop: PendingStop | undefined;
  private cancelRequested = false;
  private wakeBackOff: (() => void) | undefined;
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
    if (['stopped', 'finished', 'cancelled', 'failed'].includes(this.current)) return Promise.reject(new JobNotRunningError(this.job, this.current));
    const target: FinalTarget = options.savepoint === undefined || options.savepoint === false ? { kind: 'checkpoint' } : { kind: 'savepoint', name: typeof options.savepoint === 'string' ? options.savepoint : undefined };
    const deadlineMs = options.deadlineMs ?? this.defaultDeadlineMs;
    let resolve: (result: StopResult) => void = () => undefined;
    let reject: (error: unknown) => void = () => undefined;
    const promise = new Promise<StopResult>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => undefined);
    const pending: PendingStop = { target, deadlineMs, promise, resolve, reject };
    this.pendingStop = pending;
    this.log.info({ target: target.kind, deadlineMs, state: this.current }, target.kind === 'savepoint' ? 'stopping into a savepoint' : 'stopping with a final checkpoint');
    if (this.current !== 'created') this.setState('stopping');
    pending.timer = setTimeout(() => {
      this.log.error({ deadlineMs }, 'stop deadline passed: cancelling the job');
      this.cancelRequested = true;
      this.attempt?.stop();
      this.wakeBackOff?.();
      this.settleStop(new StopDeadlineExceededError(deadlineMs));
    }, deadlineMs);
    pending.timer.unref();
    this.attempt?.requestFinal(target);
    this.wakeBackOff?.();
    return promise;
  }

  cancel(): void {
    if (this.cancelRequested) return;
    this.log.warn({ state: this.current }, 'cancelling: no final checkpoint; sinks keep what they prepared for the next start');
    this.cancelRequested = true;
    this.attempt?.stop();
    this.wakeBackOff?.();
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
