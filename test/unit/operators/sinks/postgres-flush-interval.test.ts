/**
 * The Postgres sink writes buffered rows into the open transaction once the oldest has waited
 * `flushIntervalMs`, not only when `flushRows` keys are buffered or at the barrier: the barrier's
 * PREPARE then carries only the last interval's rows (fake sessions, a controlled clock).
 */
import { describe, expect, it } from 'vitest';
import type { PgConnect } from '../../../../operators/sinks/postgres/pg-session.ts';
import { postgresSink } from '../../../../operators/sinks/postgres/postgres-sink.ts';
import { countingOperatorContext } from '../../../support/operator-context.ts';
import { asRecords, upsertChange } from '../../../support/sink-fixtures.ts';
import { FakePgSession } from '../../../support/fake-pg-session.ts';

/** One change per record: an upsert of order `id` at `lsn`. */
const upsert = (id: number, lsn: number) => asRecords(upsertChange({ id, status: 'paid' }, lsn, 0));
const noOutput = { emit: () => undefined, emitSide: () => undefined };

describe('postgres sink flushIntervalMs (fake sessions)', () => {
  it('writes the buffer into the open transaction once its oldest change waited the interval', async () => {
    const sessions: FakePgSession[] = [];
    const connect: PgConnect = () => {
      const session = new FakePgSession();
      sessions.push(session);
      return Promise.resolve(session);
    };
    let now = 1_000;
    const op = postgresSink<number, { id: number; status: string }>({
      connect,
      table: 'orders',
      primaryKey: ['id'],
      flushRows: 5000,
      flushIntervalMs: 200,
      log: () => undefined,
    }).createOperator();
    await op.open?.({ ...countingOperatorContext('job', 'pg'), now: () => now }, undefined);
    const writer = sessions[0] as FakePgSession;
    const inserts = () => writer.statements.filter((s) => s.startsWith('INSERT INTO "orders"')).length;

    await op.processBatch([...upsert(1, 1), ...upsert(2, 2)], noOutput);
    now += 150;
    await op.processBatch(upsert(3, 3), noOutput);
    expect(inserts()).toBe(0); // the oldest waited 150 ms: still buffered
    now += 50;
    await op.processBatch(upsert(4, 4), noOutput);
    expect(inserts()).toBe(1); // 200 ms: all four written, before any barrier
    expect(writer.statements.some((s) => s.startsWith('PREPARE TRANSACTION'))).toBe(false);

    now += 10;
    await op.processBatch(upsert(5, 5), noOutput);
    expect(inserts()).toBe(1); // the interval restarts with the first change after the write
    await op.snapshotState?.(1);
    expect(inserts()).toBe(2); // the barrier writes the rest, then prepares
    expect(writer.statements.some((s) => s.startsWith('PREPARE TRANSACTION'))).toBe(true);
  });
});
