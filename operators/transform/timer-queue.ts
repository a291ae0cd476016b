/**
 * The in-memory index of one time domain's timers across all keys: a binary min-heap ordered by
 * (timestamp, key bytes), so timers fire in the same order whether the queue was filled by
 * processing or rebuilt from state after a restore. Each (timestamp, key) is queued once.
 * The queue is only an index: keyed state says whether a timer is still registered.
 */
export interface QueuedTimer {
  readonly timestamp: number;
  /** The key's canonical encoding (latin1), for ordering and de-duplication. */
  readonly keyId: string;
  readonly key: unknown;
}

const idOf = (timer: QueuedTimer): string => `${timer.timestamp}|${timer.keyId}`;

function before(a: QueuedTimer, b: QueuedTimer): boolean {
  return a.timestamp < b.timestamp || (a.timestamp === b.timestamp && a.keyId < b.keyId);
}

export class TimerQueue {
  private readonly heap: QueuedTimer[] = [];
  private readonly queued = new Set<string>();

  get size(): number {
    return this.heap.length;
  }

  add(timer: QueuedTimer): void {
    const id = idOf(timer);
    if (this.queued.has(id)) return;
    this.queued.add(id);
    this.heap.push(timer);
    this.siftUp(this.heap.length - 1);
  }

  peek(): QueuedTimer | undefined {
    return this.heap[0];
  }

  poll(): QueuedTimer | undefined {
    const top = this.heap[0];
    if (top === undefined) return undefined;
    const last = this.heap.pop() as QueuedTimer;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    this.queued.delete(idOf(top));
    return top;
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i] as QueuedTimer, heap[parent] as QueuedTimer)) return;
      [heap[i], heap[parent]] = [heap[parent] as QueuedTimer, heap[i] as QueuedTimer];
      i = parent;
    }
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && before(heap[left] as QueuedTimer, heap[smallest] as QueuedTimer)) smallest = left;
      if (right < heap.length && before(heap[right] as QueuedTimer, heap[smallest] as QueuedTimer)) smallest = right;
      if (smallest === i) return;
      [heap[i], heap[smallest]] = [heap[smallest] as QueuedTimer, heap[i] as QueuedTimer];
      i = smallest;
    }
  }
}
