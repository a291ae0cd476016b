/**
 * The bounded queue between Kafka fetching and processing. A producer that outruns the job fills
 * it; then `put` waits (and the fetch loop with it: no further fetch is made) until processing
 * takes something out. Memory stays bounded by `maxBytes` plus one fetch; nothing is ever dropped.
 * `onBytes` hears every change of the buffered bytes, peaks included (for a gauge).
 *
 * `maxAgeMs` bounds it in time as well, like Flink's buffer debloating: the buffer also counts as
 * full while its oldest item has waited that long, so a job that cannot keep up holds at most about
 * that much of its input in the process and the rest stays in Kafka. Nothing waits less for it
 * (a backlog is a backlog), but the process holds, decodes ahead and garbage-collects less, and
 * the queue's age is visible as consumer lag instead of hidden in memory.
 */
export class FetchBuffer<T> {
  private readonly items: { item: T; bytes: number; at: number }[] = [];
  private bytes = 0;
  private readonly roomWaiters: (() => void)[] = [];
  private dataWaiter: (() => void) | undefined;

  constructor(
    readonly maxBytes: number,
    private readonly onBytes: (bytes: number) => void = () => undefined,
    readonly maxAgeMs = Infinity,
    private readonly now: () => number = Date.now,
  ) {}

  get bufferedBytes(): number {
    return this.bytes;
  }

  get size(): number {
    return this.items.length;
  }

  get full(): boolean {
    if (this.bytes >= this.maxBytes) return true;
    const head = this.items[0];
    return head !== undefined && this.now() - head.at >= this.maxAgeMs;
  }

  /** Adds an item; resolves once the buffer is below its bound again. */
  async put(item: T, bytes: number): Promise<void> {
    this.items.push({ item, bytes, at: this.now() });
    this.bytes += bytes;
    this.onBytes(this.bytes);
    this.dataWaiter?.();
    while (this.full) await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
  }

  /** Takes the oldest item, waiting up to `maxWaitMs` for one. */
  async take(maxWaitMs: number): Promise<T | undefined> {
    if (this.items.length === 0 && maxWaitMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, maxWaitMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.dataWaiter = done;
      });
      this.dataWaiter = undefined;
    }
    const head = this.items.shift();
    if (head === undefined) return undefined;
    this.bytes -= head.bytes;
    this.onBytes(this.bytes);
    if (!this.full) for (const wake of this.roomWaiters.splice(0)) wake();
    return head.item;
  }

  /** Drops everything (after a rebalance the positions decide what is read again). */
  clear(): void {
    this.items.length = 0;
    this.bytes = 0;
    this.onBytes(0);
    for (const wake of this.roomWaiters.splice(0)) wake();
  }
}
