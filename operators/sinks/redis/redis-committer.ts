/**
 * The Redis side of the two-phase-commit contract. Redis has no PREPARE, so:
 *  - write: the last write per key is kept in memory until the barrier;
 *  - preCommit(n): the batch is staged in Redis (index entry first, then the hash in chunks; then
 *    WAITAOF where the server has it, so the staged batch is on disk before checkpoint n can
 *    complete) — the checkpoint records only `{checkpointId, count}`;
 *  - commit: one Lua script checks the fence, applies the batch, moves the fence, drops the stage;
 *  - recover: commits the recorded batches (fenced ones are skipped), then deletes every other
 *    staged batch of this instance (checkpoints that never completed).
 */
import { lineLogger, loggerFor } from '../../logger.ts';
import type { OperatorContext, StreamRecord } from '../../operator.ts';
import { SinkMetrics } from '../sink-metrics.ts';
import { sinkInstanceName, type SinkIdentity, type SinkLeftover, type TwoPhaseCommitter } from '../two-phase-commit.ts';
import { ALREADY_APPLIED, APPLY_SCRIPT, STAGED_BATCH_MISSING, batchKeys, encodeOp, type BatchKeys } from './fenced-batch.ts';
import type { ResolvedRedisSinkOptions } from './redis-options.ts';
import { RedisSinkError, type RedisArg, type RedisSession } from './redis-session.ts';

/** The checkpoint handle: the staged batch lives in Redis, not in the checkpoint. */
export interface RedisTxn {
  readonly checkpointId: number;
  /** Distinct keys staged; 0 means nothing was staged. */
  readonly count: number;
}

const live = new Map<string, RedisCommitter<unknown>>();

export class RedisCommitter<T> implements TwoPhaseCommitter<T, RedisTxn> {
  private readonly instance: string;
  private readonly keys: BatchKeys;
  private readonly metrics: SinkMetrics;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private session: RedisSession | undefined;
  private waitAof: boolean | undefined;
  private batch = new Map<string, string>();
  /** Source time of the batch's write per key, where it has one (the last write per key is what becomes visible). */
  private batchSourceTs = new Map<string, number>();
  /** Staged, not yet applied batches by checkpoint: for metrics only. */
  private readonly staged = new Map<number, { sourceTs: number[]; preCommitAt: number }>();
  private closed = false;

  constructor(
    private readonly o: ResolvedRedisSinkOptions<T>,
    identity: SinkIdentity,
    context: OperatorContext,
  ) {
    this.instance = sinkInstanceName(identity);
    this.keys = batchKeys(o.prefix, this.instance);
    this.metrics = new SinkMetrics(context.metrics, 'redis');
    this.now = () => context.now();
    this.log = o.log ?? lineLogger(loggerFor({ job: identity.jobName, uid: identity.sinkUid, subtask: identity.subtaskIndex }).child({ sink: 'redis' }));
  }

  beginTransaction(): Promise<void> {
    this.batch = new Map();
    this.batchSourceTs = new Map();
    return Promise.resolve();
  }

  write(records: readonly StreamRecord<T>[]): Promise<void> {
    for (const { value } of records) {
      const w = this.o.toWrite(value);
      if (w.ttl !== undefined && !(w.ttl > 0)) throw new RedisSinkError(`redisSink: ttl must be > 0 seconds (key ${w.key})`, { domain: 'user', retriable: false });
      const key = `${this.o.prefix}:${w.key}`;
      this.batch.delete(key); // keep the map in last-write order
      this.batch.set(key, encodeOp(w.value, w.ttl === undefined ? undefined : Math.max(1, Math.round(w.ttl * 1000))));
      if (w.sourceTsMs !== undefined) this.batchSourceTs.set(key, w.sourceTsMs);
      else this.batchSourceTs.delete(key);
    }
    return Promise.resolve();
  }

  async preCommit(checkpointId: number): Promise<RedisTxn> {
    if (this.batch.size === 0) return { checkpointId, count: 0 };
    const preCommitAt = this.now();
    const redis = await this.connect();
    const staged = this.keys.staged(checkpointId);
    // Indexed before it exists, so a crash mid-staging leaves nothing recover cannot find.
    await redis.pipeline([['ZADD', this.keys.index, checkpointId, String(checkpointId)], ['DEL', staged]]);
    let chunk: RedisArg[] = [];
    const commands: [string, ...RedisArg[]][] = [];
    for (const [key, op] of this.batch) {
      chunk.push(key, op);
      if (chunk.length < this.o.stageChunk * 2) continue;
      commands.push(['HSET', staged, ...chunk]);
      chunk = [];
    }
    if (chunk.length > 0) commands.push(['HSET', staged, ...chunk]);
    for (let i = 0; i < commands.length; i += 16) await redis.pipeline(commands.slice(i, i + 16));
    await this.syncToDisk(redis);
    this.staged.set(checkpointId, { sourceTs: [...this.batchSourceTs.values()], preCommitAt });
    this.o.onTransaction?.({ phase: 'prepared', checkpointId, records: this.batch.size });
    return { checkpointId, count: this.batch.size };
  }

  async commit(txn: RedisTxn): Promise<void> {
    if (txn.count === 0) return;
    const redis = await this.connect();
    const reply = Number(await redis.evalScript(APPLY_SCRIPT, [this.keys.fence, this.keys.staged(txn.checkpointId), this.keys.index], [txn.checkpointId]));
    if (reply === STAGED_BATCH_MISSING) {
      throw new RedisSinkError(
        `the staged batch of checkpoint ${txn.checkpointId} (${this.keys.staged(txn.checkpointId)}) is gone and was never applied: ` +
          'Redis lost writes (restarted without an fsynced AOF?) or someone deleted it. Its records are missing; restore from an earlier savepoint or re-run the backfill.',
        { retriable: false },
      );
    }
    const now = this.now();
    const staged = this.staged.get(txn.checkpointId);
    this.staged.delete(txn.checkpointId);
    if (reply === ALREADY_APPLIED) {
      this.metrics.count('cdcflow_sink_commits_repeated_total');
      return;
    }
    // A batch staged by an earlier process (applied by a restore) has no times here.
    this.metrics.visible(staged?.sourceTs ?? [], now, reply);
    this.metrics.committed(staged?.preCommitAt, now);
    this.o.onTransaction?.({ phase: 'committed', checkpointId: txn.checkpointId, records: reply });
  }

  async recover(committed: readonly RedisTxn[]): Promise<void> {
    const recorded = committed.filter((t) => t.count > 0);
    if (recorded.length > 0) this.log(`restore: applying the recorded batches of checkpoints ${recorded.map((t) => t.checkpointId).join(', ')} (fenced ones are skipped)`);
    for (const txn of recorded) await this.commit(txn);
    const redis = await this.connect();
    const keep = new Set(committed.map((t) => String(t.checkpointId)));
    const ids = ((await redis.call('ZRANGE', this.keys.index, 0, -1)) as string[]).filter((id) => !keep.has(id));
    if (ids.length === 0) return;
    await redis.pipeline(ids.flatMap((id): [string, ...RedisArg[]][] => [['DEL', this.keys.staged(Number(id))], ['ZREM', this.keys.index, id]]));
    this.log(`restore: discarded the staged batches of checkpoints that did not complete: ${ids.join(', ')}`);
    this.metrics.count('cdcflow_sink_rolled_back_total', ids.length);
  }

  /**
   * Fences and staged batches of this sink under every subtask index. A fence above the ids this
   * checkpoint folder knows matters most: a fresh start would reuse ids at or below it, and the
   * apply script would skip their batches as "already applied" — writes silently dropped.
   */
  async leftovers(): Promise<readonly SinkLeftover[]> {
    const redis = await this.connect();
    const base = batchKeys(this.o.prefix, this.instance.slice(0, this.instance.lastIndexOf(':') + 1)).fence.replace(/:applied$/, '');
    const found: SinkLeftover[] = [];
    for (const key of await scanKeys(redis, `${base}*:applied`)) {
      const applied = Number(await redis.call('GET', key));
      if (applied > 0) found.push({ name: `redis fence ${key} = checkpoint ${applied}`, checkpointId: applied });
    }
    for (const index of await scanKeys(redis, `${base}*:staged`)) {
      for (const id of (await redis.call('ZRANGE', index, 0, -1)) as string[]) found.push({ name: `redis staged batch ${index}:${id}`, checkpointId: Number(id) });
    }
    return found;
  }

  async discardLeftovers(): Promise<void> {
    const redis = await this.connect();
    const base = batchKeys(this.o.prefix, this.instance.slice(0, this.instance.lastIndexOf(':') + 1)).fence.replace(/:applied$/, '');
    const keys = [...(await scanKeys(redis, `${base}*:applied`)), ...(await scanKeys(redis, `${base}*:staged*`))];
    if (keys.length === 0) return;
    await redis.pipeline(keys.map((key): [string, ...RedisArg[]] => ['DEL', key]));
    this.log(`fresh start with discardSinkTransactions: deleted ${keys.length} fence/staged key(s): ${keys.join(', ')}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (live.get(this.instance) === this) live.delete(this.instance);
    await this.session?.close();
    this.session = undefined;
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
    const previous = live.get(this.instance);
    if (previous !== undefined && previous !== (this as RedisCommitter<unknown>)) await previous.close().catch(() => undefined);
    live.set(this.instance, this as RedisCommitter<unknown>);
    this.session = await this.o.connect();
    return this.session;
  }
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
