/**
 * Timers for keyed operators (keyed process functions, windows). A timer is state: per key and
 * time domain, the sorted timestamps registered live in keyed state, so they are checkpointed
 * and restored with the rest of the key's state. An in-memory queue per domain (rebuilt by
 * `restore()` from `keys()`) says which keys to look at when time advances; a timer fires only
 * if keyed state still holds it, and firing removes it — so each timer fires once, also across a
 * restore (the restored watermark is at or before the one the checkpoint saw, and a timer that
 * fired before the checkpoint is no longer in its state).
 */
import { encodeKey } from '../../state/index.ts';
import type { KeyedStateAccess, ValueState } from '../keyed-state-access.ts';
import { TimerQueue } from './timer-queue.ts';

export type TimeDomain = 'event-time' | 'processing-time';

const DOMAINS: readonly TimeDomain[] = ['event-time', 'processing-time'];

/** Keys loaded at once while firing or restoring: bounds the cache a big firing needs. */
const KEYS_PER_ROUND = 1000;

export class KeyedTimers {
  private readonly stored: Record<TimeDomain, ValueState<number[]>>;
  private readonly queues: Record<TimeDomain, TimerQueue> = {
    'event-time': new TimerQueue(),
    'processing-time': new TimerQueue(),
  };

  /** Registers the timer states; call in the operator's `open()`, before any key is loaded. */
  constructor(
    private readonly keyed: KeyedStateAccess,
    private readonly stateName = 'timers',
  ) {
    this.stored = {
      'event-time': keyed.getValueState<number[]>({ name: `${stateName}.event-time` }),
      'processing-time': keyed.getValueState<number[]>({ name: `${stateName}.processing-time` }),
    };
  }

  /** Rebuilds the queues from keyed state (after a restore); call in `open()`. */
  async restore(): Promise<void> {
    for (const domain of DOMAINS) {
      const keys: unknown[] = [];
      for await (const key of this.keyed.keys(`${this.stateName}.${domain}`)) keys.push(key);
      for (let i = 0; i < keys.length; i += KEYS_PER_ROUND) {
        const chunk = keys.slice(i, i + KEYS_PER_ROUND);
        await this.keyed.withKeys(chunk, () => {
          for (const key of chunk) {
            this.keyed.setCurrentKey(key);
            for (const timestamp of this.stored[domain].value() ?? []) this.enqueue(domain, key, timestamp);
          }
        });
      }
    }
  }

  /** Registers a timer for the current key; registering it again is a no-op. */
  register(domain: TimeDomain, timestamp: number): void {
    if (!Number.isFinite(timestamp)) throw new RangeError(`a timer needs a finite timestamp, got ${timestamp}`);
    const state = this.stored[domain];
    const current = state.value() ?? [];
    const at = insertionPoint(current, timestamp);
    if (current[at] !== timestamp) state.update([...current.slice(0, at), timestamp, ...current.slice(at)]);
    this.enqueue(domain, this.keyed.getCurrentKey(), timestamp);
  }

  /** Deletes a timer of the current key; the queue forgets it lazily. */
  delete(domain: TimeDomain, timestamp: number): boolean {
    const state = this.stored[domain];
    const current = state.value() ?? [];
    const at = insertionPoint(current, timestamp);
    if (current[at] !== timestamp) return false;
    const rest = [...current.slice(0, at), ...current.slice(at + 1)];
    if (rest.length === 0) state.clear();
    else state.update(rest);
    return true;
  }

  /** The earliest queued timer of `domain` (possibly one deleted since). */
  nextTimestamp(domain: TimeDomain): number | undefined {
    return this.queues[domain].peek()?.timestamp;
  }

  /**
   * Fires every timer of `domain` at or before `time`, in (timestamp, key) order, with the
   * timer's key as the current key. Timers registered while firing fire in the same call if due.
   * Keys are loaded, and writes written back, once per round of up to 1000 keys.
   */
  async advance(domain: TimeDomain, time: number, onTimer: (key: unknown, timestamp: number) => void): Promise<void> {
    const queue = this.queues[domain];
    for (;;) {
      const due: { key: unknown; timestamp: number }[] = [];
      const keys = new Map<string, unknown>();
      for (
        let next = queue.peek();
        next !== undefined && next.timestamp <= time && keys.size < KEYS_PER_ROUND;
        next = queue.peek()
      ) {
        queue.poll();
        due.push(next);
        keys.set(next.keyId, next.key);
      }
      if (due.length === 0) return;
      await this.keyed.withKeys(keys.values(), () => {
        for (const { key, timestamp } of due) {
          this.keyed.setCurrentKey(key);
          if (this.delete(domain, timestamp)) onTimer(key, timestamp);
        }
      });
    }
  }

  private enqueue(domain: TimeDomain, key: unknown, timestamp: number): void {
    this.queues[domain].add({ timestamp, key, keyId: encodeKey(key).toString('latin1') });
  }
}

/** Index of the first element >= `value` in a sorted array. */
function insertionPoint(sorted: readonly number[], value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if ((sorted[mid] as number) < value) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * The event-time clock of an operator with timers. It is checkpointed in the operator snapshot:
 * the runtime restores its own copy of the watermark but does not hand it to operators, and the
 * lateness decisions on the first batches after a restore need it. What is stored is the last
 * finite watermark, as the runtime stores it (end of input jumps to +Infinity without recording it).
 */
export class OperatorWatermark {
  private value: number;
  private lastFinite: number;

  constructor(restored: unknown) {
    const stored = (restored as { watermark?: unknown } | undefined)?.watermark;
    this.value = typeof stored === 'number' ? stored : Number.NEGATIVE_INFINITY;
    this.lastFinite = this.value;
  }

  get current(): number {
    return this.value;
  }

  advance(watermark: number): void {
    this.value = watermark;
    if (Number.isFinite(watermark)) this.lastFinite = watermark;
  }

  snapshot(): { readonly watermark?: number } {
    return Number.isFinite(this.lastFinite) ? { watermark: this.lastFinite } : {};
  }

  /** Rescaling: the lowest watermark of the old subtasks (none if one had none), as a snapshot. */
  static merge(parts: readonly { readonly snapshot: unknown }[]): { readonly watermark?: number } {
    const values = parts.map((p) => (p.snapshot as { watermark?: unknown } | undefined)?.watermark);
    if (values.length === 0 || values.some((v) => typeof v !== 'number')) return {};
    return { watermark: Math.min(...(values as number[])) };
  }
}
