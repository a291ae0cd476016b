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
const CONNECTOR_VERSION = '3.6.1.Final';
const DAY_MS = 86_400_000;
const STATUS_ADVANCE = 0.7;
const AMOUNT_CHANGE = 0.3;
/** Chance that a step of the scheduler commits the chosen open transaction (when it has changes). */
const COMMIT_CHANCE = 0.4;

type Change = { op: OrderEnvelope['op']; id: number; before: OrderRow | null; after: OrderRow | null };
type Executed = Change & { readonly lsn: number };
type Transaction = { readonly txId: number; readonly size: number; readonly changes: Executed[] };
type Queued = Executed & { readonly sequence: string; readonly txId: number; readonly commitIndex: number };
type Pending = { due: number; record: Omit<WorkloadRecord, 'seq' | 'duplicate'> };

/**
 * Generates the reference orders workload (WORKLOAD.md) deterministically, shaped like Debezium
 * 3.6's Postgres connector output (checked field by field against a captured real topic in
 * test/unit/workload/generator-real-shape.test.ts):
 *  - the snapshot: one `r` per id 1..keys (`snapshot` first/true/…/last), all at the snapshot LSN
 *    with `sequence` `[null, "<snapshot LSN>"]`, taken while writes run: `concurrency - 1`
 *    transactions are in flight at the snapshot point, their first changes below its LSN;
 *  - then transactions in commit order, up to `concurrency` open at once, their changes
 *    interleaved in the WAL: `source.lsn` (the change's own LSN) goes backwards between
 *    transactions, `source.sequence` = `["<commit LSN of the transaction streamed before>",
 *    "<change LSN>"]` (null for the first one, as from a fresh connector) is commit order; all
 *    changes of a transaction share its commit time (`source.ts_ms`, minus jitter, or minus
 *    `lateByMs` for late events); each delete is followed by its tombstone.
 * A row is locked by the open transaction that changed it (as Postgres does), so per key the
 * change LSNs still follow commit order while streaming; only the snapshot's rank needs the
 * sequence: a change committed after it can carry a lower LSN.
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
  readonly #open: Transaction[] = [];
  readonly #locked = new Set<number>();
  readonly #ready: Queued[] = [];
  #seq = 0;
  #lsn = SNAPSHOT_LSN;
  #txId = SNAPSHOT_TX;
  /** Debezium's last commit LSN: null until the first streamed commit (a fresh connector). */
  #lastCommit: number | null = null;
  /** Changes executed so far (streamed budget: events - keys). */
  #executed = 0;
  #commits = 0;
  /** The commit being emitted and its commit time (that of its first emitted change). */
  #emitting = { commitIndex: -1, tsMs: 0 };

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
      if (i === this.#o.keys) this.#startInFlight();
      const change = i < this.#o.keys ? this.#snapshotRead() : this.#nextStreamed();
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

  #snapshotRead(): Change & { readonly lsn: number } {
    const created = this.#o.startTsMs - this.#prng.range(1, 30 * DAY_MS);
    const id = this.#table.insert(this.#prng.range(500, 99_999), created);
    const advanced = this.#prng.int(4);
    if (advanced > 0) this.#table.update(id, advanced, this.#table.cents(id), created + advanced * 3_600_000);
    return { op: 'r', id, before: null, after: this.#table.row(id), lsn: SNAPSHOT_LSN };
  }

  /**
   * Transactions that began before the snapshot point and commit after it: their first change
   * sits below the snapshot LSN (the snapshot does not see it), as when a connector starts under load.
   */
  #startInFlight(): void {
    const streamed = this.#o.events - this.#o.keys;
    const count = Math.min(this.#o.concurrency - 1, streamed);
    for (let t = 0; t < count; t++) {
      const tx = this.#begin();
      const lsn = SNAPSHOT_LSN - (count - t) * this.#prng.range(64, 1024);
      this.#execute(tx, lsn);
    }
  }

  #begin(): Transaction {
    this.#txId += this.#prng.range(1, 3);
    const tx: Transaction = { txId: this.#txId, size: 1 + this.#prng.int(this.#o.maxTransactionSize), changes: [] };
    this.#open.push(tx);
    return tx;
  }

  /** Runs the scheduler until a transaction commits, then hands out its changes in order. */
  #nextStreamed(): Queued {
    while (this.#ready.length === 0) this.#step();
    return this.#ready.shift() as Queued;
  }

  #step(): void {
    const budgetLeft = this.#executed < this.#o.events - this.#o.keys;
    if (budgetLeft && this.#open.length < this.#o.concurrency && (this.#open.length === 0 || this.#prng.chance(0.5)))
      this.#begin();
    const tx = this.#open[this.#prng.int(this.#open.length)] as Transaction;
    const full = tx.changes.length >= tx.size || !budgetLeft;
    if (tx.changes.length > 0 && (full || this.#prng.chance(COMMIT_CHANCE))) this.#commit(tx);
    else if (budgetLeft) this.#execute(tx, (this.#lsn += this.#prng.range(64, 4096)));
    else this.#open.splice(this.#open.indexOf(tx), 1); // an empty transaction: nothing to stream
  }

  #execute(tx: Transaction, lsn: number): void {
    const change = this.#change(this.#o.keys + this.#executed);
    this.#executed += 1;
    this.#locked.add(change.id);
    tx.changes.push({ ...change, lsn });
  }

  #commit(tx: Transaction): void {
    this.#open.splice(this.#open.indexOf(tx), 1);
    const commitLsn = (this.#lsn += this.#prng.range(64, 512));
    const sequence = (lsn: number): string =>
      JSON.stringify([this.#lastCommit === null ? null : String(this.#lastCommit), String(lsn)]);
    for (const change of tx.changes) {
      this.#locked.delete(change.id);
      this.#ready.push({ ...change, sequence: sequence(change.lsn), txId: tx.txId, commitIndex: this.#commits });
    }
    this.#lastCommit = commitLsn;
    this.#commits += 1;
  }

  /** A change of a row no open transaction holds; `at` stands in for the commit time. */
  #change(at: number): Change {
    const roll = this.#prng.next();
    const live = this.#table.liveCount;
    let id = live === 0 ? undefined : this.#table.liveAt(this.#prng.int(live));
    for (let attempt = 0; id !== undefined && this.#locked.has(id) && attempt < 8; attempt++)
      id = this.#table.liveAt(this.#prng.int(live));
    if (id === undefined || this.#locked.has(id) || roll < this.#mixInsert) {
      const inserted = this.#table.insert(this.#prng.range(500, 99_999), this.#commitTs(at));
      return { op: 'c', id: inserted, before: null, after: this.#table.row(inserted) };
    }
    const before = this.#table.row(id);
    if (roll < this.#mixInsert + this.#mixDelete) {
      this.#table.delete(id);
      return { op: 'd', id, before, after: null };
    }
    const status = this.#table.status(id);
    const nextStatus = status < 3 && this.#prng.chance(STATUS_ADVANCE) ? status + 1 : status;
    const cents = this.#prng.chance(AMOUNT_CHANGE) ? this.#prng.range(500, 99_999) : this.#table.cents(id);
    this.#table.update(id, nextStatus, cents, this.#commitTs(at));
    return { op: 'u', id, before, after: this.#table.row(id) };
  }

  #source(
    i: number,
    change: Change & {
      readonly lsn: number;
      readonly sequence?: string;
      readonly txId?: number;
      readonly commitIndex?: number;
    },
    late: boolean,
  ): OrderSource {
    const snapshot = change.op === 'r';
    if (change.commitIndex !== undefined && change.commitIndex !== this.#emitting.commitIndex)
      this.#emitting = { commitIndex: change.commitIndex, tsMs: this.#commitTs(i) };
    const commitTs = snapshot ? this.#commitTs(i) : this.#emitting.tsMs;
    const jitter = this.#prng.range(0, this.#o.outOfOrdernessMs);
    const tsMs = commitTs - jitter - (late ? this.#o.lateByMs : 0);
    const last = this.#o.keys - 1;
    return {
      version: CONNECTOR_VERSION,
      connector: 'postgresql',
      name: 'ecommerce',
      ts_ms: tsMs,
      snapshot: !snapshot ? 'false' : i === last ? 'last' : i === 0 ? 'first' : 'true',
      db: 'ecommerce',
      sequence: change.sequence ?? JSON.stringify([null, String(change.lsn)]),
      ts_us: tsMs * 1000,
      ts_ns: tsMs * 1_000_000,
      schema: 'public',
      table: 'orders',
      txId: change.txId ?? SNAPSHOT_TX,
      lsn: change.lsn,
      xmin: null,
      origin: null,
      origin_lsn: null,
    };
  }

  #encode(
    change: Change & { readonly lsn: number; readonly sequence?: string; readonly txId?: number },
    i: number,
  ): Pending['record'] {
    // Only streamed changes are late: a snapshot read's time is the read time, never behind.
    const late = this.#prng.chance(this.#o.lateFraction) && change.op !== 'r';
    const source = this.#source(i, change, late);
    const tsMs = this.#commitTs(i) + this.#prng.range(5, 50);
    const event: OrderEnvelope = {
      before: change.before,
      after: change.after,
      source,
      transaction: null,
      op: change.op,
      ts_ms: tsMs,
      ts_us: tsMs * 1000,
      ts_ns: tsMs * 1_000_000,
    };
    const key = Buffer.from(`{"id":${change.id}}`);
    const partition = kafkaPartition(key, this.#o.partitions);
    return { partition, id: change.id, key, value: Buffer.from(JSON.stringify(event)), event, late };
  }
}
