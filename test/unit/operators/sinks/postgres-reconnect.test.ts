/**
 * The Postgres sink's reconnect rules, against fake sessions (no server): a dropped control
 * session is replaced without touching the writer — also when the first replacement attempt fails
 * — so the writer's open transaction stays the one every write goes into.
 */
import { describe, expect, it } from 'vitest';
import type { StreamRecord } from '../../../../operators/operator.ts';
import type { PgConnect } from '../../../../operators/sinks/postgres/pg-session.ts';
import { postgresSink } from '../../../../operators/sinks/postgres/postgres-sink.ts';
import type { TableChange } from '../../../../operators/table-change.ts';
import { countingOperatorContext } from '../../../support/operator-context.ts';
import { streamPosition } from '../../../../state/change-position.ts';
import { FakePgSession } from '../../../support/fake-pg-session.ts';

type Change = TableChange<number, { id: number; status: string }>;
const upsert = (id: number, lsn: number): StreamRecord<Change> => ({
  value: {
    kind: 'upsert',
    key: id,
    row: { id, status: 'paid' },
    previous: null,
    position: streamPosition(0, lsn),
    sourceTsMs: 0,
  },
  timestamp: undefined,
});
const noOutput = { emit: () => undefined, emitSide: () => undefined };

class FakeSession extends FakePgSession {
  constructor(readonly n: number) {
    super();
  }
}

describe('postgres sink reconnects (fake sessions)', () => {
  it('keeps the writer and its open transaction when only the control session dropped, even if reconnecting fails once', async () => {
    const sessions: FakeSession[] = [];
    let refuse = 0;
    const connect: PgConnect = () => {
      if (refuse > 0) {
        refuse -= 1;
        return Promise.reject(new Error('connect ECONNREFUSED'));
      }
      const session = new FakeSession(sessions.length);
      sessions.push(session);
      return Promise.resolve(session);
    };
    const op = postgresSink<number, { id: number; status: string }>({
      connect,
      table: 'orders',
      primaryKey: ['id'],
      flushRows: 1,
      log: () => undefined,
    }).createOperator();
    await op.open?.(countingOperatorContext('job', 'pg'), undefined);
    const [writer, control] = sessions as [FakeSession, FakeSession];
    await op.processBatch([upsert(1, 1)], noOutput);
    expect(writer.statements.filter((s) => s === 'BEGIN')).toHaveLength(1);

    control.broken = true;
    refuse = 1;
    await expect(Promise.resolve(op.processBatch([upsert(2, 2)], noOutput))).rejects.toThrow(/ECONNREFUSED/);
    // Before: the failed reconnect forgot the writer; the next write opened a new one and, the
    // transaction counting as open, wrote without BEGIN — outside any transaction.
    await op.processBatch([upsert(3, 3)], noOutput);
    const inserts = sessions.filter((s) => s.statements.some((sql) => sql.startsWith('INSERT INTO "orders"')));
    expect(inserts.map((s) => s.n)).toEqual([writer.n]);
    expect(writer.statements.filter((s) => s.startsWith('INSERT INTO "orders"')).length).toBeGreaterThanOrEqual(2);
    await op.snapshotState?.(1);
    expect(writer.statements.some((s) => s.startsWith('PREPARE TRANSACTION'))).toBe(true);
  });
});
