/**
 * The bounded queue between Kafka fetching and processing. A producer that outruns the job fills
 * it; then `put` waits (and the fetch loop with it: no further fetch is made) until processing
 * takes something out. Memory stays bounded by `maxBytes` plus one fetch; nothing is ever dropped.
 * `onBytes` hears every change of the buffered bytes, peaks included (for a gauge).
 *
 * `maxDrainMs` bounds it in time as well, like Flink's buffer debloating: the bound in bytes is
 * what processing took out in about that long (measured over windows of `RATE_WINDOW_MS`), never
 * more than `maxBytes` and never less than `minBytes`. A job that cannot keep up then holds about
 * `maxDrainMs` of its input in the process and the rest stays in Kafka: a backlog still waits as
 * long (it is a backlog), but the process holds and decodes less ahead, and the wait shows as
 * consumer lag instead of hiding in memory. Until a first window is measured the bound is `minBytes`.
 */
/** How long the take rate behind the time bound is measured over. */
const RATE_WINDOW_MS = 500;

export class FetchBuffer<T> {
  private readonly items: { item: T; bytes: number }[] = [];
  private bytes = 0;
  private readonly roomWaiters: (() => void)[] = [];
  private dataWaiter: (() => void) | undefined;
  /** The current bound in bytes (see the class comment). */
  private bound: number;
  private windowStart: number | undefined;
  private windowBytes = 0;

  constructor(
    readonly maxBytes: number,
    private readonly onBytes: (bytes: number) => void = () => undefined,
    readonly maxDrainMs = Infinity,
    readonly minBytes = Math.min(maxBytes, 1024 * 1024),
    private readonly now: () => number = Date.now,
  ) {
    this.bound = maxDrainMs === Infinity ? maxBytes : minBytes;
  }

  /** The bound in bytes now: `maxBytes`, or what processing takes in `maxDrainMs`. */
  get boundBytes(): number {
    return this.bound;
  }

  get bufferedBytes(): number {
    return this.bytes;
  }

  get size(): number {
    return this.items.length;
  }

  get full(): boolean {
    return this.bytes >= this.bound;
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
    if (this.maxDrainMs !== Infinity) this.measure(head.bytes);
    if (!this.full) for (const wake of this.roomWaiters.splice(0)) wake();
    return head.item;
  }

  /** Adds taken bytes to the window; a full window sets the bound to its rate × `maxDrainMs`. */
  private measure(taken: number): void {
    const now = this.now();
    if (this.windowStart === undefined) {
      this.windowStart = now; // the first take only starts the clock
      return;
    }
    this.windowBytes += taken;
    const elapsed = now - this.windowStart;
    if (elapsed < RATE_WINDOW_MS) return;
    const perMs = this.windowBytes / elapsed;
    this.bound = Math.max(this.minBytes, Math.min(this.maxBytes, Math.round(perMs * this.maxDrainMs)));
    this.windowStart = now;
    this.windowBytes = 0;
  }

  /** Drops everything (after a rebalance the positions decide what is read again). */
  clear(): void {
    this.items.length = 0;
    this.bytes = 0;
    this.onBytes(0);
    for (const wake of this.roomWaiters.splice(0)) wake();
  }
}
