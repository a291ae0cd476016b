/**
 * Where a subtask's time goes (CDCFLOW_PARALLEL_STATS=1): waiting for a poll, waiting for
 * credit, pushing inbound exchange batches, pushing its own polled batches. A diagnostic for the
 * parallel speed-up work; logged when the subtask ends. Off, it costs one branch.
 */
import { rootLogger } from '../../operators/logger.ts';

export const loopStatsEnabled = process.env['CDCFLOW_PARALLEL_STATS'] === '1';

export class LoopStats {
  readonly ms: Record<string, number> = {};
  readonly counts: Record<string, number> = {};

  add(name: string, sinceMs: number, n = 1): void {
    if (!loopStatsEnabled) return;
    this.ms[name] = (this.ms[name] ?? 0) + (performance.now() - sinceMs);
    this.counts[name] = (this.counts[name] ?? 0) + n;
  }

  count(name: string, n = 1): void {
    if (loopStatsEnabled) this.counts[name] = (this.counts[name] ?? 0) + n;
  }

  report(label: string): void {
    if (!loopStatsEnabled) return;
    const ms = Object.entries(this.ms).map(([k, v]) => `${k}=${Math.round(v)}ms`);
    const counts = Object.entries(this.counts).map(([k, v]) => `${k}#${v}`);
    rootLogger().info(
      { ms: this.ms, counts: this.counts },
      `loop stats ${label}: ${ms.join(' ')} | ${counts.join(' ')}`,
    );
  }
}
