import { kafkaPartition } from './murmur2.ts';
import type { OrderEnvelope, OrderRow, OrderSource } from './orders-model.ts';
import { OrdersTable } from './orders-table.ts';
import { Prng } from './prng.ts';
import { resolveWorkloadOptions } from './workload-options.ts';
import type { ResolvedWorkloadOptions, WorkloadOptions } from './workload-options.ts';

/** One Kafka message of the workload, with the logical event it encodes. */
export interface WorkloadRecord {
  /** Position in the emitted stream (0-based, counts tombstones and duplicates). */
  readonly seq: number;
  readonly partition: number;
  readonly id: number;
  /** `{"id":42}`, as Debezium's JSON converter writes the key with `schemas.enable=false`. */
  readonly key: Buffer;
  /** The Debezium JSON value; null for the tombstone after a delete. */
  readonly value: Buffer | null;
  /** What `value` encodes; null for a tombstone. */
  readonly event: OrderEnvelope | null;
  /** Emitted with `source.ts_ms` older by `lateByMs` (by construction, not by a watermark). */
  readonly late: boolean;
  /** A replay of an earlier record (same bytes, same LSN). */
  readonly duplicate: boolean;
}

const SNAPSHOT_LSN = 0x16b374d48;
const SNAPSHOT_TX = 770;
const CONNECTOR_VERSION = '2.7.3.Final';
const DAY_MS = 86_400_000;
const STATUS_ADVANCE = 0.7;
const AMOUNT_CHANGE = 0.3;

type Change = { op: OrderEnvelope['op']; id: number; before: OrderRow | null; after: OrderRow | null };
type Pending = { due: number; record: Omit<WorkloadRecord, 'seq' | 'duplicate'> };

/**
 * Generates the reference orders workload (WORKLOAD.md) deterministically: the snapshot's `r`
 * events for ids 1..keys, then inserts/updates/deletes by the mix, each delete followed by its
 * tombstone. LSNs follow commit (generation) order — the snapshot shares one LSN, as Debezium's
 * does — and `source.ts_ms` is the commit time minus jitter (or minus `lateByMs` for late events).
 */
export function* generateWorkload(options: WorkloadOptions = {}): Generator<WorkloadRecord> {
  yield* new WorkloadGenerator(resolveWorkloadOptions(options)).records();
}

class WorkloadGenerator {
  readonly #o: ResolvedWorkloadOptions;
  readonly #prng: Prng;
  readonly #table: OrdersTable;
  readonly #pending: Pending[] = [];
  readonly #mixInsert: number;
  readonly #mixDelete: number;
  #seq = 0;
  #lsn = SNAPSHOT_LSN;
  #txId = SNAPSHOT_TX;

  constructor(options: ResolvedWorkloadOptions) {
    this.#o = options;
    this.#prng = new Prng(options.seed);
    const expectedInserts = Math.ceil((options.events - options.keys) * options.mix.insert * 1.1) + 16;
    this.#table = new OrdersTable(options.keys + expectedInserts, options.startTsMs, Math.max(1000, options.keys / 5));
    const { insert, update, delete: del } = options.mix;
    this.#mixInsert = insert / (insert + update + del);
    this.#mixDelete = del / (insert + update + del);
  }

  *records(): Generator<WorkloadRecord> {
    for (let i = 0; i < this.#o.events; i++) {
      while (this.#pending[0] !== undefined && this.#pending[0].due <= i) yield this.#emitDuplicate();
      const change = i < this.#o.keys ? this.#snapshotRead() : this.#streamChange(i);
      const record = this.#encode(change, i);
      yield this.#emit(record, false);
      if (this.#prng.chance(this.#o.duplicateFraction)) {
        this.#pending.push({ due: i + 1 + this.#o.duplicateDelay, record });
      }
      if (change.op === 'd') yield this.#emit({ ...record, value: null, event: null, late: false }, false);
    }
    while (this.#pending.length > 0) yield this.#emitDuplicate();
  }

  #emit(record: Pending['record'], duplicate: boolean): WorkloadRecord {
    return { ...record, seq: this.#seq++, duplicate };
  }

  /** Due times only grow in push order, so the queue stays sorted without a heap. */
  #emitDuplicate(): WorkloadRecord {
    const pending = this.#pending.shift() as Pending;
    return this.#emit(pending.record, true);
  }

  #commitTs(i: number): number {
    return this.#o.startTsMs + i * this.#o.tickMs;
  }

  #snapshotRead(): Change {
    const created = this.#o.startTsMs - this.#prng.range(1, 30 * DAY_MS);
    const id = this.#table.insert(this.#prng.range(500, 99_999), created);
    const advanced = this.#prng.int(4);
    if (advanced > 0) this.#table.update(id, advanced, this.#table.cents(id), created + advanced * 3_600_000);
    return { op: 'r', id, before: null, after: this.#table.row(id) };
  }

  #streamChange(i: number): Change {
    const roll = this.#prng.next();
    const live = this.#table.liveCount;
    if (live === 0 || roll < this.#mixInsert) {
      const id = this.#table.insert(this.#prng.range(500, 99_999), this.#commitTs(i));
      return { op: 'c', id, before: null, after: this.#table.row(id) };
    }
    const id = this.#table.liveAt(this.#prng.int(live));
    const before = this.#table.row(id);
    if (roll < this.#mixInsert + this.#mixDelete) {
      this.#table.delete(id);
      return { op: 'd', id, before, after: null };
    }
    const status = this.#table.status(id);
    const nextStatus = status < 3 && this.#prng.chance(STATUS_ADVANCE) ? status + 1 : status;
    const cents = this.#prng.chance(AMOUNT_CHANGE) ? this.#prng.range(500, 99_999) : this.#table.cents(id);
    this.#table.update(id, nextStatus, cents, this.#commitTs(i));
    return { op: 'u', id, before, after: this.#table.row(id) };
  }

  #source(i: number, snapshot: boolean, late: boolean): OrderSource {
    const previous = this.#lsn;
    if (!snapshot) {
      this.#lsn += this.#prng.range(64, 4096);
      this.#txId += this.#prng.range(1, 3);
    }
    const jitter = this.#prng.range(0, this.#o.outOfOrdernessMs);
    return {
      version: CONNECTOR_VERSION,
      connector: 'postgresql',
      name: 'ecommerce',
      ts_ms: this.#commitTs(i) - jitter - (late ? this.#o.lateByMs : 0),
      snapshot: !snapshot ? 'false' : i === this.#o.keys - 1 ? 'last' : 'true',
      db: 'ecommerce',
      sequence: JSON.stringify(snapshot ? [null, String(this.#lsn)] : [String(previous), String(this.#lsn)]),
      schema: 'public',
      table: 'orders',
      txId: this.#txId,
      lsn: this.#lsn,
      xmin: null,
    };
  }

  #encode(change: Change, i: number): Pending['record'] {
    // Only streamed changes are late: a snapshot read's time is the read time, never behind.
    const late = this.#prng.chance(this.#o.lateFraction) && change.op !== 'r';
    const source = this.#source(i, change.op === 'r', late);
    const event: OrderEnvelope = {
      before: change.before,
      after: change.after,
      source,
      op: change.op,
      ts_ms: this.#commitTs(i) + this.#prng.range(5, 50),
      transaction: null,
    };
    const key = Buffer.from(`{"id":${change.id}}`);
    const partition = kafkaPartition(key, this.#o.partitions);
    return { partition, id: change.id, key, value: Buffer.from(JSON.stringify(event)), event, late };
  }
}
