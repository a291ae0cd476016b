/**
 * The Redis side of the two-phase-commit contract. Redis has no PREPARE, so:
 *  - write: the last write per key is kept in memory until the barrier;
 *  - preCommit(n): the batch is staged in Redis (index entry first, then the hash in chunks; then
 *    WAITAOF where the server has it, so the staged batch is on disk before checkpoint n can
 *    complete) — the checkpoint records only `{checkpointId, count}`;
 *  - commit: one Lua script checks the fence, applies the batch, moves the fence, drops the stage;
 *  - recover: in group mode first raises the instance's owner epoch key to ours (fenced-batch.ts),
 *    then commits the recorded batches (fenced ones are skipped), then deletes every other staged
 *    batch of this instance (checkpoints that never completed). From the claim on, the apply
 *    script refuses every batch of an older owner: OwnershipLostError, nothing written.
 * In the lifecycle of sink-transaction-state.ts: the batch in memory is `open`, a staged batch
 * `pre-committed`, an applied one `committed` (or `recovered` when a restore applied it), a
 * discarded one `aborted`.
 */
import { lineLogger, loggerFor } from '../../logger.ts';
import type { OperatorContext, StreamRecord } from '../../operator.ts';
import { SinkMetrics } from '../sink-metrics.ts';
import { IllegalTransactionTransitionError, SinkTransaction } from '../sink-transaction-state.ts';
import { sinkInstanceName, type SinkIdentity, type SinkLeftover, type TwoPhaseCommitter } from '../two-phase-commit.ts';
import {
  ALREADY_APPLIED,
  APPLY_SCRIPT,
  CLAIM_SCRIPT,
  EPOCH_FENCED,
  STAGED_BATCH_MISSING,
  batchKeys,
  checkpointOfMember,
  encodeOp,
  type BatchKeys,
} from './fenced-batch.ts';
import { OwnershipLostError, ownerEpochOf, type OwnerEpoch } from '../owner-epoch.ts';
import type { RedisWrite, ResolvedRedisSinkOptions } from './redis-options.ts';
import { messageOf, originOfValue, type RecordDeadLetters } from '../../record-dead-letters.ts';
import { RedisSinkError, type RedisArg, type RedisSession } from './redis-session.ts';

/** The checkpoint handle: the staged batch lives in Redis, not in the checkpoint. */
export interface RedisTxn {
  readonly checkpointId: number;
  /** Distinct keys staged; 0 means nothing was staged. */
  readonly count: number;
  /** Group mode: the owner epoch that staged it (its stage key carries it). */
  readonly epoch?: number;
}

interface OpenBatch {
  readonly lifecycle: SinkTransaction;
  readonly batch: Map<string, string>;
  /** Source time of the batch's write per key, where it has one (the last write per key is what becomes visible). */
  readonly sourceTs: Map<string, number>;
}

interface StagedBatch {
  readonly lifecycle: SinkTransaction;
  /** Undefined for a batch staged by an earlier process: no metrics of its times. */
  readonly sourceTs: readonly number[] | undefined;
  readonly preCommitAt: number | undefined;
}

const live = new Map<string, RedisCommitter<unknown>>();

/** Redis's default `proto-max-bulk-len`: no bulk string (key, value, staged op) may be longer. */
const REDIS_DEFAULT_MAX_BULK_BYTES = 512 * 1024 * 1024;

export class RedisCommitter<T> implements TwoPhaseCommitter<T, RedisTxn> {
  private readonly instance: string;
  private readonly keys: BatchKeys;
  /** Group mode: the partition task's owner epoch; undefined otherwise (no epoch check). */
  private readonly ownerEpoch: OwnerEpoch | undefined;
  /** `live` key: one committer per instance, and per owner epoch in group mode (older owners are fenced by Redis). */
  private readonly liveKey: string;
  private readonly metrics: SinkMetrics;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private session: RedisSession | undefined;
  private waitAof: boolean | undefined;
  /** The open transaction: the last write per key, kept in memory until the barrier stages it. */
  private open: OpenBatch | undefined;
  /** Staged (pre-committed), not yet applied batches by checkpoint. */
  private readonly staged = new Map<number, StagedBatch>();
  private closed = false;
  private readonly deadLetters: RecordDeadLetters | undefined;
  private readonly uid: string;
  /** Largest key or staged op, in bytes: the option, else the server's proto-max-bulk-len. */
  private maxBytes: number | undefined;

  constructor(
    private readonly o: ResolvedRedisSinkOptions<T>,
    identity: SinkIdentity,
    context: OperatorContext,
  ) {
    this.instance = sinkInstanceName(identity);
    this.keys = batchKeys(o.prefix, this.instance);
    this.ownerEpoch = ownerEpochOf(identity.jobName);
    this.liveKey = this.ownerEpoch === undefined ? this.instance : `${this.instance}@e${this.ownerEpoch.epoch}`;
    this.metrics = new SinkMetrics(context.metrics, 'redis');
    this.now = () => context.now();
    this.log =
      o.log ??
      lineLogger(
        loggerFor({ job: identity.jobName, uid: identity.sinkUid, subtask: identity.subtaskIndex }).child({
          sink: 'redis',
        }),
      );
    this.deadLetters = context.deadLetters;
    this.uid = context.uid;
  }

  beginTransaction(): Promise<void> {
    // One still open with writes would lose them (open → open); an empty one carries over.
    const open = this.open;
    if (open !== undefined && open.batch.size > 0)
      return Promise.reject(new IllegalTransactionTransitionError(open.lifecycle.name, open.lifecycle.state, 'open'));
    this.open ??= {
      lifecycle: SinkTransaction.open(`batch of ${this.instance} (not staged yet)`),
      batch: new Map(),
      sourceTs: new Map(),
    };
    return Promise.resolve();
  }

  /**
   * Keeps the last write per key. A record Redis would refuse whatever the retry never enters the
   * batch (a refused staging command fails the whole checkpoint): `onRefused` takes it.
   */
  async write(records: readonly StreamRecord<T>[]): Promise<void> {
    const open = this.requireOpen();
    const maxBytes = this.maxBytes ?? (this.maxBytes = await this.bulkLimit());
    for (const { value } of records) {
      let w: RedisWrite;
      try {
        w = this.o.toWrite(value);
      } catch (error) {
        this.refuse(`toWrite threw: ${messageOf(error)}`, error, value);
        continue;
      }
      const invalid = invalidWrite(w);
      if (invalid !== undefined) {
        this.refuse(invalid, undefined, value);
        continue;
      }
      const key = `${this.o.prefix}:${w.key}`;
      const op = encodeOp(w.value, w.ttl === undefined ? undefined : Math.max(1, Math.round(w.ttl * 1000)));
      const [keyBytes, opBytes] = [Buffer.byteLength(key), Buffer.byteLength(op)];
      if (keyBytes > maxBytes || opBytes > maxBytes) {
        this.refuse(
          `the ${opBytes > maxBytes ? `value of key ${abbreviate(w.key)} (${opBytes} bytes)` : `key (${keyBytes} bytes)`} is over the limit of ${maxBytes} bytes`,
          undefined,
          value,
        );
        continue;
      }
      open.batch.delete(key); // keep the map in last-write order
      open.batch.set(key, op);
      if (w.sourceTsMs !== undefined) open.sourceTs.set(key, w.sourceTsMs);
      else open.sourceTs.delete(key);
    }
  }

  private refuse(reason: string, error: unknown, value: T): void {
    if (this.deadLetters === undefined)
      throw new RedisSinkError(`redisSink ${this.uid}: ${reason}`, {
        domain: 'user',
        retriable: false,
        ...(error === undefined ? {} : { cause: error }),
      });
    const origin = originOfValue(value);
    this.deadLetters.reject(
      {
        kind: 'sink-refused',
        reason: `redisSink: ${reason}`,
        error: error ?? new RedisSinkError(reason, { domain: 'user', retriable: false }),
        value,
        ...(origin === undefined ? {} : { origin }),
      },
      this.o.onRefused,
    );
  }

  /** The option, else the server's proto-max-bulk-len (CONFIG GET may be disabled: then Redis's default). */
  private async bulkLimit(): Promise<number> {
    if (this.o.maxValueBytes !== undefined) return this.o.maxValueBytes;
    try {
      const reply = (await (await this.connect()).call('CONFIG', 'GET', 'proto-max-bulk-len')) as unknown[];
      const n = Number(reply[1]);
      return Number.isFinite(n) && n > 0 ? n : REDIS_DEFAULT_MAX_BULK_BYTES;
    } catch {
      return REDIS_DEFAULT_MAX_BULK_BYTES;
    }
  }

  async preCommit(checkpointId: number): Promise<RedisTxn> {
    const open = this.requireOpen();
    if (open.batch.size === 0) return { checkpointId, count: 0 };
    open.lifecycle.checkMove('pre-committed');
    const preCommitAt = this.now();
    const redis = await this.connect();
    const epoch = this.ownerEpoch?.epoch;
    // Early only (the apply script is the fence): a fenced owner need not stage at all.
    if (epoch !== undefined) await this.requireEpoch(redis, epoch);
    const staged = this.keys.staged(checkpointId, epoch);
    // Indexed before it exists, so a crash mid-staging leaves nothing recover cannot find.
    await redis.pipeline([
      ['ZADD', this.keys.index, checkpointId, this.keys.member(checkpointId, epoch)],
      ['DEL', staged],
    ]);
    let chunk: RedisArg[] = [];
    const commands: [string, ...RedisArg[]][] = [];
    for (const [key, op] of open.batch) {
      chunk.push(key, op);
      if (chunk.length < this.o.stageChunk * 2) continue;
      commands.push(['HSET', staged, ...chunk]);
      chunk = [];
    }
    if (chunk.length > 0) commands.push(['HSET', staged, ...chunk]);
    for (let i = 0; i < commands.length; i += 16) await redis.pipeline(commands.slice(i, i + 16));
    await this.syncToDisk(redis);
    open.lifecycle.moveTo('pre-committed');
    this.open = undefined;
    this.staged.set(checkpointId, { lifecycle: open.lifecycle, sourceTs: [...open.sourceTs.values()], preCommitAt });
    this.o.onTransaction?.({ phase: 'prepared', checkpointId, records: open.batch.size });
    return epoch === undefined
      ? { checkpointId, count: open.batch.size }
      : { checkpointId, count: open.batch.size, epoch };
  }

  /** Throws OwnershipLostError unless the instance's epoch key holds `epoch`. */
  private async requireEpoch(redis: RedisSession, epoch: number): Promise<void> {
    const current = Number((await redis.call('GET', this.keys.epoch)) ?? 0);
    if (current !== epoch) throw new OwnershipLostError(this.instance, epoch, current > epoch ? current : undefined);
  }

  async commit(txn: RedisTxn): Promise<void> {
    await this.apply(txn, 'committed');
  }

  /**
   * Applies a staged batch: `committed` when its checkpoint completed in this process,
   * `recovered` when a restore applies what the restored checkpoint recorded.
   */
  private async apply(txn: RedisTxn, outcome: 'committed' | 'recovered'): Promise<void> {
    if (txn.count === 0) return;
    const staged = this.staged.get(txn.checkpointId) ?? {
      lifecycle: SinkTransaction.adopt(this.keys.staged(txn.checkpointId, txn.epoch)),
      sourceTs: undefined,
      preCommitAt: undefined,
    };
    staged.lifecycle.checkMove(outcome);
    const redis = await this.connect();
    const ours = this.ownerEpoch?.epoch;
    const reply = Number(
      await redis.evalScript(
        APPLY_SCRIPT,
        [this.keys.fence, this.keys.staged(txn.checkpointId, txn.epoch), this.keys.index, this.keys.epoch],
        [txn.checkpointId, this.keys.member(txn.checkpointId, txn.epoch), ours ?? ''],
      ),
    );
    if (reply === EPOCH_FENCED && ours !== undefined) {
      const current = Number((await redis.call('GET', this.keys.epoch).catch(() => null)) ?? 0);
      throw new OwnershipLostError(this.instance, ours, current > ours ? current : undefined);
    }
    if (reply === STAGED_BATCH_MISSING) {
      throw new RedisSinkError(
        `the staged batch of checkpoint ${txn.checkpointId} (${this.keys.staged(txn.checkpointId, txn.epoch)}) is gone and was never applied: ` +
          'Redis lost writes (restarted without an fsynced AOF?) or someone deleted it. Its records are missing; restore from an earlier savepoint or re-run the backfill.',
        { retriable: false },
      );
    }
    const now = this.now();
    staged.lifecycle.moveTo(outcome);
    this.staged.delete(txn.checkpointId);
    if (reply === ALREADY_APPLIED) {
      this.metrics.count('cdcflow_sink_commits_repeated_total');
      return;
    }
    // A batch staged by an earlier process (applied by a restore) has no times here.
    this.metrics.visible(staged.sourceTs ?? [], now, reply);
    this.metrics.committed(staged.preCommitAt, now);
    this.o.onTransaction?.({ phase: 'committed', checkpointId: txn.checkpointId, records: reply });
  }

  async recover(committed: readonly RedisTxn[]): Promise<void> {
    if (this.ownerEpoch !== undefined) await this.claimEpoch(this.ownerEpoch);
    const recorded = committed.filter((t) => t.count > 0);
    if (recorded.length > 0)
      this.log(
        `restore: applying the recorded batches of checkpoints ${recorded.map((t) => t.checkpointId).join(', ')} (fenced ones are skipped)`,
      );
    for (const txn of recorded) await this.apply(txn, 'recovered');
    const redis = await this.connect();
    const keep = new Set(committed.map((t) => this.keys.member(t.checkpointId, t.epoch)));
    const ids = ((await redis.call('ZRANGE', this.keys.index, 0, -1)) as string[]).filter((id) => !keep.has(id));
    if (ids.length === 0) return;
    // Staged by checkpoints that never completed: pre-committed → aborted.
    await redis.pipeline(
      ids.flatMap((id): [string, ...RedisArg[]][] => [
        ['DEL', `${this.keys.index}:${id}`],
        ['ZREM', this.keys.index, id],
      ]),
    );
    this.log(`restore: discarded the staged batches of checkpoints that did not complete: ${ids.join(', ')}`);
    this.metrics.count('cdcflow_sink_rolled_back_total', ids.length);
  }

  /**
   * Raises the instance's epoch key to ours in one script (never lowers it): from here on every
   * apply of an older owner is refused. Throws OwnershipLostError if a newer owner claimed already.
   */
  private async claimEpoch(owner: OwnerEpoch): Promise<void> {
    const redis = await this.connect();
    const newer = Number(await redis.evalScript(CLAIM_SCRIPT, [this.keys.epoch], [owner.epoch]));
    if (newer !== 0) throw new OwnershipLostError(this.instance, owner.epoch, newer);
    this.log(`claimed owner epoch ${owner.epoch} of ${this.instance}`);
  }

  /**
   * Fences and staged batches of this sink under every subtask index. A fence above the ids this
   * checkpoint folder knows matters most: a fresh start would reuse ids at or below it, and the
   * apply script would skip their batches as "already applied" — writes silently dropped.
   */
  async leftovers(): Promise<readonly SinkLeftover[]> {
    const redis = await this.connect();
    const base = batchKeys(this.o.prefix, this.instance.slice(0, this.instance.lastIndexOf(':') + 1)).fence.replace(
      /:applied$/,
      '',
    );
    const found: SinkLeftover[] = [];
    for (const key of await scanKeys(redis, `${base}*:applied`)) {
      const applied = Number(await redis.call('GET', key));
      if (applied > 0) found.push({ name: `redis fence ${key} = checkpoint ${applied}`, checkpointId: applied });
    }
    for (const index of await scanKeys(redis, `${base}*:staged`)) {
      for (const id of (await redis.call('ZRANGE', index, 0, -1)) as string[])
        found.push({ name: `redis staged batch ${index}:${id}`, checkpointId: checkpointOfMember(id) });
    }
    return found;
  }

  async discardLeftovers(): Promise<void> {
    const redis = await this.connect();
    const base = batchKeys(this.o.prefix, this.instance.slice(0, this.instance.lastIndexOf(':') + 1)).fence.replace(
      /:applied$/,
      '',
    );
    const keys = [...(await scanKeys(redis, `${base}*:applied`)), ...(await scanKeys(redis, `${base}*:staged*`))];
    if (keys.length === 0) return;
    await redis.pipeline(keys.map((key): [string, ...RedisArg[]] => ['DEL', key]));
    this.log(
      `fresh start with discardSinkTransactions: deleted ${keys.length} fence/staged key(s): ${keys.join(', ')}`,
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (live.get(this.liveKey) === this) live.delete(this.liveKey);
    // Never staged, so nothing in Redis to roll back: the replay after a restore writes it again.
    if (this.open !== undefined && this.open.batch.size > 0) this.open.lifecycle.moveTo('aborted');
    this.open = undefined;
    await this.session?.close();
    this.session = undefined;
  }

  private requireOpen(): OpenBatch {
    if (this.open === undefined)
      throw new RedisSinkError('no open Redis batch: beginTransaction() must run first', {
        domain: 'internal',
        retriable: false,
      });
    this.open.lifecycle.requireOpen();
    return this.open;
  }

  /** WAITAOF (Redis ≥ 7.2): the staged batch is fsynced before the checkpoint can complete. */
  private async syncToDisk(redis: RedisSession): Promise<void> {
    if (this.waitAof === false) return;
    try {
      await redis.call('WAITAOF', 1, 0, 10_000);
      this.waitAof = true;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (this.waitAof === true || !/unknown command|appendonly|ERR WAITAOF/i.test(message)) throw error;
      this.waitAof = false; // older Redis or AOF off: staged batches rely on the server's fsync policy
    }
  }

  private async connect(): Promise<RedisSession> {
    if (this.closed) throw new RedisSinkError('redis sink is closed', { domain: 'internal', retriable: false });
    if (this.session !== undefined) return this.session;
    const previous = live.get(this.liveKey);
    if (previous !== undefined && previous !== (this as RedisCommitter<unknown>))
      await previous.close().catch(() => undefined);
    live.set(this.liveKey, this as RedisCommitter<unknown>);
    this.session = await this.o.connect();
    return this.session;
  }
}

/** What makes a write one Redis (or the sink's batch protocol) cannot take, or undefined. */
function invalidWrite(w: unknown): string | undefined {
  if (w === null || typeof w !== 'object') return `toWrite returned ${w === null ? 'null' : typeof w}, not a write`;
  const { key, value, ttl } = w as Record<string, unknown>;
  if (typeof key !== 'string') return `the key is ${typeof key}, not a string`;
  if (value !== null && typeof value !== 'string')
    return `the value of key ${abbreviate(key)} is ${Array.isArray(value) ? 'an array' : typeof value}: serialise it to a string (or null to delete)`;
  if (ttl !== undefined && !(typeof ttl === 'number' && ttl > 0 && Number.isFinite(ttl)))
    return `ttl must be > 0 seconds, got ${String(ttl)} (key ${abbreviate(key)})`;
  // The fence and staged batches live under <prefix>:__cdcflow:...; a data key there could overwrite them.
  if (key.startsWith('__cdcflow'))
    return `the key ${abbreviate(key)} is inside the sink's bookkeeping namespace (__cdcflow)`;
  return undefined;
}

function abbreviate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

async function scanKeys(redis: RedisSession, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = (await redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000)) as [string, string[]];
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}
