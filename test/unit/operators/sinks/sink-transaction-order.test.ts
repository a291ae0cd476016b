/**
 * Committers keep their transactions on the lifecycle's paths (fake sessions, no server): a new
 * transaction begun while one with writes is still open is refused with the typed error instead
 * of silently dropping those writes (Redis) or carrying them into the next checkpoint's
 * transaction (Postgres), and the open transaction is left as it was.
 */
import { describe, expect, it } from 'vitest';
import type { StreamRecord } from '../../../../operators/operator.ts';
import { PostgresCommitter } from '../../../../operators/sinks/postgres/postgres-committer.ts';
import { resolvePostgresSinkOptions } from '../../../../operators/sinks/postgres/postgres-options.ts';
import { RedisCommitter } from '../../../../operators/sinks/redis/redis-committer.ts';
import type { RedisSession } from '../../../../operators/sinks/redis/redis-session.ts';
import { IllegalTransactionTransitionError } from '../../../../operators/sinks/sink-transaction-state.ts';
import type { TableChange } from '../../../../operators/table-change.ts';
import { streamPosition } from '../../../../state/change-position.ts';
import { countingOperatorContext } from '../../../support/operator-context.ts';
import { FakePgSession } from '../../../support/fake-pg-session.ts';

type Change = TableChange<number, { id: number; status: string }>;
const upsert = (id: number): StreamRecord<Change> => ({
  value: {
    kind: 'upsert',
    key: id,
    row: { id, status: 'paid' },
    previous: null,
    position: streamPosition(0, id),
    sourceTsMs: 0,
  },
  timestamp: undefined,
});
const identity = { jobName: 'job', sinkUid: 'sink', subtaskIndex: 0 };

class FakePg extends FakePgSession {}

class FakeRedis implements RedisSession {
  readonly commands: string[] = [];
  call(command: string): Promise<unknown> {
    this.commands.push(command);
    return Promise.resolve('OK');
  }
  pipeline(commands: readonly (readonly [string, ...(string | number)[]])[]): Promise<unknown[]> {
    for (const [command] of commands) this.commands.push(command);
    return Promise.resolve(commands.map(() => 'OK'));
  }
  evalScript(): Promise<unknown> {
    return Promise.resolve(1);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe('committers refuse a new transaction while one with writes is open', () => {
  it('postgres: BEGIN was sent; beginTransaction is refused and the open transaction still prepares', async () => {
    const sessions: FakePg[] = [];
    const options = resolvePostgresSinkOptions<Change>({
      connect: () => Promise.resolve(sessions[sessions.push(new FakePg()) - 1] as FakePg),
      table: 'orders',
      primaryKey: ['id'],
      flushRows: 1,
      log: () => undefined,
    });
    const committer = new PostgresCommitter<Change>(
      options,
      { ...identity, sinkUid: 'pg-order' },
      countingOperatorContext('job', 'pg-order'),
    );
    await committer.beginTransaction();
    await committer.write([upsert(1)]);
    const writer = sessions[0] as FakePg;
    expect(writer.statements.filter((s) => s === 'BEGIN')).toHaveLength(1);
    const refused = await committer.beginTransaction().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(IllegalTransactionTransitionError);
    expect(refused).toMatchObject({ from: 'open', to: 'open' });
    const handle = await committer.preCommit(1);
    expect(handle.gid).not.toBeNull();
    expect(writer.statements.filter((s) => s.startsWith('PREPARE TRANSACTION'))).toHaveLength(1);
    await committer.close();
  });

  it('redis: the batch in memory is not dropped by a second beginTransaction', async () => {
    const redis = new FakeRedis();
    const committer = new RedisCommitter<Change>(
      {
        prefix: 'order-test',
        connect: () => Promise.resolve(redis),
        toWrite: (c) => ({ key: String(c.key), value: 'v' }),
        stageChunk: 100,
        log: () => undefined,
        onTransaction: undefined,
        maxValueBytes: 1024,
        onRefused: 'fail',
      },
      { ...identity, sinkUid: 'redis-order' },
      countingOperatorContext('job', 'redis-order'),
    );
    await committer.beginTransaction();
    await committer.beginTransaction(); // an empty batch carries over
    await committer.write([upsert(1), upsert(2)]);
    const refused = await committer.beginTransaction().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(IllegalTransactionTransitionError);
    expect(refused).toMatchObject({ from: 'open', to: 'open' });
    expect(await committer.preCommit(1)).toEqual({ checkpointId: 1, count: 2 });
    expect(redis.commands.filter((c) => c === 'HSET')).toHaveLength(1);
    await committer.close();
  });
});
