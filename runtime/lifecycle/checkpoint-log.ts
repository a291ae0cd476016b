/**
 * Checkpoint lines that say something without spamming at one per second: the first completed
 * checkpoint of an attempt, the first after failures ("completing again"), every savepoint,
 * every abort, and otherwise one line per `every` completions (about once a minute by default).
 */
import type { Logger } from 'pino';
import type { CheckpointEvent, CheckpointStats } from '../../checkpoints/index.ts';

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
      if (s.failureReason === 'coordinator stopped')
        return this.log.debug({ ...fields }, `${s.kind} ${s.checkpointId} aborted: the attempt ended`);
      this.failingSince ??= s.checkpointId;
      this.log.warn(
        { ...fields, reason: s.failureReason },
        `${s.kind} ${s.checkpointId} aborted: ${s.failureReason ?? 'unknown reason'}`,
      );
      return;
    }
    this.completed += 1;
    if (this.failingSince !== undefined) {
      this.log.info(
        { ...fields, failingSince: this.failingSince },
        `checkpoint ${s.checkpointId} completed: checkpoints complete again (failing since ${this.failingSince})`,
      );
      this.failingSince = undefined;
    } else if (s.kind === 'savepoint' || this.completed === 1 || this.completed % this.every === 0) {
      this.log.info({ ...fields, completedThisAttempt: this.completed }, `${s.kind} ${s.checkpointId} completed`);
    }
  }

  /**
   * The coordinator's other events: failures of a trigger, a callback or retention are warnings
   * (retention failing silently fills the disk); retention that deleted something is debug.
   */
  onEvent(e: CheckpointEvent): void {
    switch (e.type) {
      case 'trigger-failed':
        return this.log.warn({ kind: e.kind, err: e.error }, `could not trigger a ${e.kind}: ${describe(e.error)}`);
      case 'callback-failed':
        return this.log.warn(
          { checkpoint: e.checkpointId, callback: e.callback, err: e.error },
          `checkpoint ${e.checkpointId}: ${e.callback} failed: ${describe(e.error)}`,
        );
      case 'retention-failed':
        return this.log.warn(
          { checkpoint: e.checkpointId, err: e.error },
          `retention after checkpoint ${e.checkpointId} failed (old checkpoints stay on disk until it works): ${describe(e.error)}`,
        );
      case 'failure-threshold-exceeded':
        return this.log.error(
          { consecutiveFailures: e.consecutiveFailures, reason: e.reason },
          `${e.consecutiveFailures} checkpoints failed in a row: ${e.reason}`,
        );
      case 'retention':
        if (e.result.deletedCheckpointIds.length > 0)
          this.log.debug(
            { checkpoint: e.checkpointId, deleted: e.result.deletedCheckpointIds, files: e.result.deletedFiles.length },
            `retention deleted checkpoints ${e.result.deletedCheckpointIds.join(', ')}`,
          );
        return;
      case 'ignored-message':
        return this.log.debug(
          { checkpoint: e.checkpointId, task: e.taskId, reason: e.reason },
          `ignored ${e.message} of ${e.taskId} for checkpoint ${e.checkpointId}: ${e.reason}`,
        );
      case 'triggered':
        return;
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
