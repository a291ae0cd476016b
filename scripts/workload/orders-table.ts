import type { OrderRow, OrderStatus } from './orders-model.ts';
import { ORDER_STATUSES, addressOf, centsToDecimal, currencyOf, customerOf, notesOf } from './orders-model.ts';

/**
 * The generator's picture of `public.orders`: columnar typed arrays rather than objects, so the L
 * preset (10M rows) costs ~21 bytes a row. Times are stored in seconds relative to the start.
 */
export class OrdersTable {
  #status: Uint8Array;
  #cents: Int32Array;
  #created: Int32Array;
  #updated: Int32Array;
  /** Live ids, for a uniform pick; `#livePos[id]` is an id's index there, -1 once deleted. */
  #live: Int32Array;
  #livePos: Int32Array;
  #liveCount = 0;
  #maxId = 0;
  readonly #startTsMs: number;
  readonly #customers: number;

  constructor(capacity: number, startTsMs: number, customers: number) {
    this.#startTsMs = startTsMs;
    this.#customers = customers;
    this.#status = new Uint8Array(capacity + 1);
    this.#cents = new Int32Array(capacity + 1);
    this.#created = new Int32Array(capacity + 1);
    this.#updated = new Int32Array(capacity + 1);
    this.#live = new Int32Array(capacity + 1);
    this.#livePos = new Int32Array(capacity + 1).fill(-1);
  }

  get liveCount(): number {
    return this.#liveCount;
  }

  get maxId(): number {
    return this.#maxId;
  }

  liveAt(index: number): number {
    return this.#live[index] ?? 0;
  }

  status(id: number): number {
    return this.#status[id] ?? 0;
  }

  /** Adds the next id (ids are dense, like a bigserial). */
  insert(cents: number, createdMs: number): number {
    const id = this.#maxId + 1;
    if (id >= this.#status.length) this.#grow();
    this.#maxId = id;
    this.#status[id] = 0;
    this.#cents[id] = cents;
    this.#created[id] = this.#seconds(createdMs);
    this.#updated[id] = this.#seconds(createdMs);
    this.#live[this.#liveCount] = id;
    this.#livePos[id] = this.#liveCount;
    this.#liveCount += 1;
    return id;
  }

  update(id: number, status: number, cents: number, updatedMs: number): void {
    this.#status[id] = status;
    this.#cents[id] = cents;
    this.#updated[id] = this.#seconds(updatedMs);
  }

  cents(id: number): number {
    return this.#cents[id] ?? 0;
  }

  delete(id: number): void {
    const pos = this.#livePos[id] ?? -1;
    if (pos < 0) return;
    const last = this.#live[this.#liveCount - 1] ?? 0;
    this.#live[pos] = last;
    this.#livePos[last] = pos;
    this.#livePos[id] = -1;
    this.#liveCount -= 1;
  }

  row(id: number): OrderRow {
    return {
      id,
      customer_id: customerOf(id, this.#customers),
      status: ORDER_STATUSES[this.#status[id] ?? 0] as OrderStatus,
      amount: centsToDecimal(this.#cents[id] ?? 0),
      currency: currencyOf(id),
      shipping_address: addressOf(id),
      notes: notesOf(id),
      created_at: new Date(this.#startTsMs + (this.#created[id] ?? 0) * 1000).toISOString(),
      updated_at: new Date(this.#startTsMs + (this.#updated[id] ?? 0) * 1000).toISOString(),
    };
  }

  #seconds(ms: number): number {
    return Math.floor((ms - this.#startTsMs) / 1000);
  }

  #grow(): void {
    const size = this.#status.length * 2;
    const grow = <T extends Uint8Array | Int32Array>(old: T, make: (n: number) => T): T => {
      const next = make(size);
      next.set(old);
      return next;
    };
    this.#status = grow(this.#status, (n) => new Uint8Array(n));
    this.#cents = grow(this.#cents, (n) => new Int32Array(n));
    this.#created = grow(this.#created, (n) => new Int32Array(n));
    this.#updated = grow(this.#updated, (n) => new Int32Array(n));
    this.#live = grow(this.#live, (n) => new Int32Array(n));
    const pos = new Int32Array(size).fill(-1);
    pos.set(this.#livePos);
    this.#livePos = pos;
  }
}
