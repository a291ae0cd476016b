/**
 * The main thread's view of the N subtask workers of one attempt: which lifecycle messages each
 * has sent, the first failure (a 'failed' message, an uncaught error, or an exit before 'done'),
 * and their metrics. Every wait races with that failure, so one dead worker ends the attempt.
 */
import type { Worker } from 'node:worker_threads';
import { fromWireError } from '../../state/index.ts';
import './error-classes.ts';
import { SubtaskFailedError } from './errors.ts';
import type { FromSubtask, ToSubtask } from './protocol.ts';

type Lifecycle = 'opened' | 'sources-ended' | 'done';

export class WorkerGroup {
  private workers: Worker[] = [];
  private readonly seen = new Map<Lifecycle, Set<number>>([
    ['opened', new Set()],
    ['sources-ended', new Set()],
    ['done', new Set()],
  ]);
  private readonly finalMetrics = new Map<number, unknown>();
  private readonly exited = new Set<number>();
  private readonly metricReplies = new Map<number, (metrics: unknown) => void>();
  private nextRequest = 0;
  private failure: Error | undefined;
  private readonly failed: Promise<never>;
  private reject: (error: Error) => void = () => undefined;
  private changed: () => void = () => undefined;

  constructor(readonly size: number) {
    this.failed = new Promise<never>((_, reject) => (this.reject = reject));
    this.failed.catch(() => undefined);
  }

  attach(workers: Worker[], onMessage: (index: number, message: FromSubtask) => void): void {
    this.workers = workers;
    workers.forEach((worker, index) => {
      worker.on('message', (message: FromSubtask) => {
        if (message.type === 'failed') {
          // Rebuilt with its class and fields: `retriable` decides in the main thread as it would have in the worker.
          const cause = fromWireError(message.error);
          this.fail(new SubtaskFailedError(index, cause.message, cause));
        } else if (message.type === 'metrics') this.metricReplies.get(message.requestId)?.(message.metrics);
        else if (message.type === 'ack' || message.type === 'decline') onMessage(index, message);
        else this.mark(index, message.type, message.type === 'done' ? message.metrics : undefined);
      });
      worker.on('error', (error) => this.fail(new SubtaskFailedError(index, error.message, error)));
      worker.on('exit', (code) => {
        this.exited.add(index);
        if (!this.seen.get('done')?.has(index))
          this.fail(new SubtaskFailedError(index, `worker thread exited (code ${code}) before it finished`));
      });
    });
  }

  broadcast(message: ToSubtask): void {
    for (const worker of this.workers) worker.postMessage(message);
  }

  fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    // The healthy subtasks close their state and connections before the restart reopens them.
    this.broadcast({ type: 'stop', abort: true });
    this.reject(error);
  }

  /** Resolves once every worker sent `state` (or every worker is done); rejects on the first failure. */
  async until(state: Lifecycle): Promise<void> {
    const reached = () => this.seen.get(state)?.size === this.size || this.seen.get('done')?.size === this.size;
    while (!reached()) await this.race(new Promise<void>((resolve) => (this.changed = resolve)));
  }

  /** `promise`, or the first worker failure, whichever comes first. */
  race<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([promise, this.failed]);
  }

  /** Every worker's registry as JSON: live ones are asked (1 s at most), finished ones gave theirs when done. */
  async metrics(): Promise<unknown[]> {
    return Promise.all(
      this.workers.map((worker, index) => {
        if (this.finalMetrics.has(index)) return Promise.resolve(this.finalMetrics.get(index));
        if (this.failure !== undefined) return Promise.resolve([]);
        const requestId = this.nextRequest++;
        return new Promise<unknown>((resolve) => {
          const timer = setTimeout(() => resolve([]), 1_000);
          this.metricReplies.set(requestId, (m) => {
            clearTimeout(timer);
            this.metricReplies.delete(requestId);
            resolve(m);
          });
          worker.postMessage({ type: 'metrics-request', requestId } satisfies ToSubtask);
        });
      }),
    );
  }

  /**
   * Ends every worker. Finished ones get a moment to exit by themselves; after a failure every
   * worker gets up to 10 s to close (RocksDB must be closed before the restart opens it again
   * in this process); then the rest are terminated.
   */
  async terminate(): Promise<void> {
    await Promise.all(
      this.workers.map(async (worker, index) => {
        if (this.exited.has(index)) return;
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        const grace = this.failure !== undefined ? 10_000 : this.seen.get('done')?.has(index) ? 500 : 0;
        if (grace > 0) await Promise.race([exited, new Promise((r) => setTimeout(r, grace))]);
        await worker.terminate();
      }),
    );
  }

  private mark(index: number, state: Lifecycle, metrics: unknown): void {
    this.seen.get(state)?.add(index);
    if (state === 'done') this.finalMetrics.set(index, metrics);
    this.changed();
  }
}
