/**
 * The bounded queue between Kafka fetching and processing. A producer that outruns the job fills
 * it; then `put` waits (and the fetch loop with it: no further fetch is made) until processing
 * takes something out. Memory stays bounded by `maxBytes` plus one fetch; nothing is ever dropped.
 * `onBytes` hears every change of the buffered bytes, peaks included (for a gauge).
 */
export class FetchBuffer<T> {
  private readonly items: { item: T; bytes: number }[] = [];
  private bytes = 0;
  private readonly roomWaiters: (() => void)[] = [];
  private dataWaiter: (() => void) | undefined;

  constructor(
    readonly maxBytes: number,
    private readonly onBytes: (bytes: number) => void = () => undefined,
  ) {}

  get bufferedBytes(): number {
    return this.bytes;
  }

  get size(): number {
    return this.items.length;
  }

  get full(): boolean {
    return this.bytes >= this.maxBytes;
  }

  /** Adds an item; resolves once the buffer is below its bound again. */
  async put(item: T, bytes: number): Promise<void> {
    this.items.push({ item, bytes });
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
