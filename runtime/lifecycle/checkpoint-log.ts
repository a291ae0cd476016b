/**
 * Checkpoint lines that say something without spamming at one per second: the first completed
 * checkpoint of an attempt, the first after failures ("completing again"), every savepoint,
 * every abort, and otherwise one line per `every` completions (about once a minute by default).
 */
import type { Logger } from 'pino';
import type { CheckpointStats } from '../../checkpoints/index.ts';

export class CheckpointLog {
  private completed = 0;
  private failingSince: number | undefined;

  constructor(
    private readonly log: Logger,
    private readonly every: number,
  ) {}

  static everyMinute(log: Logger, intervalMs: number): CheckpointLog {
    return new CheckpointLog(log, Math.max(1, Math.round(60_000 / Math.max(1, intervalMs))));
  }

  onStats(s: CheckpointStats): void {
    const fields = { checkpoint: s.checkpointId, kind: s.kind, durationMs: Math.round(s.durationMs), bytes: s.bytes };
    if (s.status !== 'completed') {
      // The attempt ending (stop, restart) aborts what is in flight: not a failure worth a warning.
      if (s.failureReason === 'coordinator stopped') return this.log.debug({ ...fields }, `${s.kind} ${s.checkpointId} aborted: the attempt ended`);
      this.failingSince ??= s.checkpointId;
      this.log.warn({ ...fields, reason: s.failureReason }, `${s.kind} ${s.checkpointId} aborted: ${s.failureReason ?? 'unknown reason'}`);
      return;
    }
    this.completed += 1;
    if (this.failingSince !== undefined) {
      this.log.info({ ...fields, failingSince: this.failingSince }, `checkpoint ${s.checkpointId} completed: checkpoints complete again (failing since ${this.failingSince})`);
      this.failingSince = undefined;
    } else if (s.kind === 'savepoint' || this.completed === 1 || this.completed % this.every === 0) {
      this.log.info({ ...fields, completedThisAttempt: this.completed }, `${s.kind} ${s.checkpointId} completed`);
    }
  }
}
