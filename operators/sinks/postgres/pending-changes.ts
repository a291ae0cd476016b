/**
 * Changes received and not yet written into a transaction: the latest change per primary key.
 * They leave when the buffer fills or at the barrier, except those whose key one of our own
 * prepared, uncommitted transactions holds (its row lock would block the write until a commit
 * only this task loop can deliver): those stay, and a barrier records them in the checkpoint
 * handle (`deferred`) so a restore puts them back.
 */
import type { KeyedChange } from './table-writer.ts';

export class PendingChanges {
  private readonly buffer = new Map<string, KeyedChange>();
  private flushAt: number;
  /** Records arrived since the last barrier: a bounded job's close writes deferred changes only if none did. */
  private arrived = false;
  /** When the first change since the last `takeWritable` was added (undefined: none since). */
  private firstAddedAt: number | undefined;

  /**
   * @param flushRows distinct keys that make the buffer full
   * @param byPosition keep a key's newer change when an older one (by source position) comes later
   */
  constructor(
    private readonly flushRows: number,
    private readonly byPosition: boolean,
  ) {
    this.flushAt = flushRows;
  }

  get size(): number {
    return this.buffer.size;
  }

  /** Enough keys buffered beyond those held back to be worth a write. */
  get full(): boolean {
    return this.buffer.size >= this.flushAt;
  }

  get arrivedSinceBarrier(): boolean {
    return this.arrived;
  }

  /** A batch of `records` arrived (mapped or not): see `arrivedSinceBarrier`. */
  noteArrivals(records: number): void {
    this.arrived = this.arrived || records > 0;
  }

  barrier(): void {
    this.arrived = false;
  }

  /** A change added since the last write has waited `intervalMs` (held keys are re-checked at most once per interval). */
  due(now: number, intervalMs: number): boolean {
    return this.firstAddedAt !== undefined && now - this.firstAddedAt >= intervalMs;
  }

  add(change: KeyedChange, now = 0): void {
    this.firstAddedAt ??= now;
    const buffered = this.buffer.get(change.keyId);
    if (
      this.byPosition &&
      buffered?.position !== undefined &&
      change.position !== undefined &&
      change.position < buffered.position
    )
      return;
    this.buffer.set(change.keyId, change);
  }

  /** Removes and returns every change whose key is not held; what stays no longer counts towards full. */
  takeWritable(isHeld: (keyId: string) => boolean): KeyedChange[] {
    const writable: KeyedChange[] = [];
    this.firstAddedAt = undefined;
    for (const [keyId, change] of this.buffer) {
      if (isHeld(keyId)) continue;
      writable.push(change);
      this.buffer.delete(keyId);
    }
    this.flushAt = this.buffer.size + this.flushRows;
    return writable;
  }

  /** Everything still buffered, for the checkpoint handle or the last write at close. */
  values(): KeyedChange[] {
    return [...this.buffer.values()];
  }

  /** A restore: exactly the restored handle's deferred changes. */
  replaceWith(changes: readonly KeyedChange[]): void {
    this.buffer.clear();
    this.firstAddedAt = undefined;
    for (const change of changes) this.buffer.set(change.keyId, change);
  }

  clear(): void {
    this.buffer.clear();
    this.firstAddedAt = undefined;
  }
}
