import type { SinkTransactionEvent, TwoPhaseCommitOptions } from '../two-phase-commit.ts';
import type { RedisConnect } from './redis-session.ts';

/** One write: `value` null deletes the key; `ttl` (seconds) expires it. */
export interface RedisWrite {
  /** Under the sink's prefix: the Redis key is `<prefix>:<key>`. */
  readonly key: string;
  readonly value: string | null;
  readonly ttl?: number;
  /** Source commit time, for `cdcflow_sink_change_visibility_seconds`. */
  readonly sourceTsMs?: number;
}

export interface RedisSinkOptions<T> {
  /** Namespace of every key the sink writes, its fence and its staged batches. */
  readonly prefix: string;
  /** @default process.env.REDIS_URL */
  readonly url?: string;
  /** Replaces ioredis (tests, other clients); wins over `url`. */
  readonly connect?: RedisConnect;
  /** Record → write. @default for TableChange: `<prefix>:<key>` = JSON of the row, deleted on delete */
  readonly toWrite?: (value: T) => RedisWrite;
  /** Hash fields per HSET while staging. @default 1000 */
  readonly stageChunk?: number;
  /** Commit retries and back-off. */
  readonly retry?: TwoPhaseCommitOptions;
  /** @default 'redis' */
  readonly name?: string;
  /** Operational events (discarded batches, repeated commits). @default the job's log (operators/logger.ts) */
  readonly log?: (line: string) => void;
  /** Called after each batch is staged (`prepared`) and applied (`committed`). */
  readonly onTransaction?: (event: SinkTransactionEvent) => void;
  /**
   * Largest value (and largest key) the sink writes, in bytes. Redis refuses a bulk string over
   * its `proto-max-bulk-len` (read from the server when CONFIG GET is allowed), and a refused
   * staging command would fail every retry of the checkpoint. @default the server's
   * proto-max-bulk-len (512 MiB)
   */
  readonly maxValueBytes?: number;
  /**
   * A record Redis would refuse whatever the retry (`toWrite` threw or returned no string value, a
   * ttl ≤ 0, a key or value over the limit, a key inside the sink's bookkeeping namespace): send it
   * to the job's dead-letter topic (stage = this sink's uid), `fail` the job naming it, or `skip`
   * it (counted). The rest of the checkpoint's batch is applied either way. @default 'dead-letter'
   */
  readonly onRefused?: 'dead-letter' | 'fail' | 'skip';
}

export interface ResolvedRedisSinkOptions<T> {
  readonly prefix: string;
  readonly connect: RedisConnect;
  readonly toWrite: (value: T) => RedisWrite;
  readonly stageChunk: number;
  readonly log: ((line: string) => void) | undefined;
  readonly onTransaction: ((event: SinkTransactionEvent) => void) | undefined;
  readonly maxValueBytes: number | undefined;
  readonly onRefused: 'dead-letter' | 'fail' | 'skip';
}
