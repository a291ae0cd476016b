/**
 * Issue 10, "dead letters end to end": a record that makes user code throw, or that state cannot
 * store, is a deterministic record failure. It goes to the job's dead-letter topic with the
 * operator's uid as stage (policy `dead-letter`, the default) and the job goes on, or fails at once
 * without restarts (policy `fail`); it never loops through restarts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeEvent, TableChange } from '../../../runtime/index.ts';
import {
  SlidingEventTimeWindows,
  StreamEnvironment,
  TumblingEventTimeWindows,
  WatermarkStrategy,
  collectSink,
  fromCollection,
  type WindowResult,
} from '../../../runtime/index.ts';
import type { DeadLetter } from '../../../operators/sources/kafka/dead-letter.ts';
import type { DeadLetterWriter } from '../../../operators/sources/kafka/dead-letter-writer.ts';
import { RecordFailedError } from '../../../operators/record-dead-letters.ts';
import { counterValue } from '../operators/window/harness.ts';
import { testChangeEvent } from '../../support/change-events.ts';

interface Row {
  readonly id: number;
  readonly status: string;
  readonly notes?: unknown;
}

function change(id: number, lsn: number, row: Partial<Row> = {}): ChangeEvent<Row> {
  return testChangeEvent(
    'c',
    lsn,
    { id, status: 'paid', ...row },
    { id },
    {
      origin: { topic: 'cdc.orders', partition: 2, offset: String(100 + lsn) },
    },
  );
}

function deep(levels: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function environment(
  letters: DeadLetter[],
  onRecordError: 'dead-letter' | 'fail' = 'dead-letter',
  backend: 'memory' | 'rocksdb' = 'memory',
): StreamEnvironment {
  const dir = mkdtempSync(join(tmpdir(), 'cdcflow-record-failures-'));
  dirs.push(dir);
  const writer: DeadLetterWriter = {
    open: () => Promise.resolve(),
    write: (l) => (letters.push(...l), Promise.resolve()),
    close: () => Promise.resolve(),
  };
  return StreamEnvironment.create({
    jobName: 'record-failures',
    checkpoints: { dir: join(dir, 'chk'), intervalMs: 30 },
    state: { backend, dir: join(dir, 'state') },
    restart: { maxAttempts: 3, initialDelayMs: 10 },
    deadLetters: { writer, onRecordError },
    log: () => undefined,
  });
}

describe('record failures in operators', () => {
  it('a map that throws on one record dead-letters it with the operator uid as stage, and the job goes on without restarts', async () => {
    const letters: DeadLetter[] = [];
    const env = environment(letters);
    const out: number[] = [];
    env
      .fromSource(fromCollection([change(1, 1), change(2, 2), change(3, 3)], { batchSize: 3 }))
      .map((e) => {
        if (e.after?.id === 2) throw new TypeError('cannot read amount of undefined');
        return e.after?.id ?? 0;
      })
      .uid('parse-amount')
      .sinkTo(collectSink(out));
    const result = await env.execute();
    expect(result.restarts).toBe(0);
    expect(out).toEqual([1, 3]);
    expect(letters).toHaveLength(1);
    const letter = letters[0] as DeadLetter;
    expect(letter).toMatchObject({
      stage: 'parse-amount',
      errorKind: 'user-code',
      errorClass: 'TypeError',
      topic: 'cdc.orders',
      partition: 2,
      offset: '102',
    });
    expect(letter.reason).toMatch(/map threw TypeError: cannot read amount/);
    // Written back as Debezium JSON, so the replay tool can re-inject it into the source topic.
    expect(JSON.parse(letter.value?.toString() ?? '')).toMatchObject({
      op: 'c',
      after: { id: 2 },
      source: { lsn: 2, ts_ms: 1_700_000_000_002 },
    });
    expect(JSON.parse(letter.key?.toString() ?? '')).toEqual({ id: 2 });
    expect(
      await counterValue(env.metrics, 'cdcflow_dead_letters_total', { stage: 'parse-amount', reason: 'user-code' }),
    ).toBe(1);
  });

  // Whether the runtime then skips its restarts (the error is not retriable) is the error model's part of issue 10.
  it('with onRecordError: fail, the job fails with a non-retriable error naming the record', async () => {
    const env = environment([], 'fail');
    env
      .fromSource(fromCollection([change(1, 1), change(2, 2)], { batchSize: 2 }))
      .filter((e) => {
        if (e.after?.id === 2) throw new Error('boom');
        return true;
      })
      .uid('only-paid')
      .sinkTo(collectSink([]));
    const failure = await env.execute().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(RecordFailedError);
    expect((failure as RecordFailedError).retriable).toBe(false);
    expect((failure as Error).message).toMatch(
      /only-paid: the record at cdc\.orders\/2@102 failed \(user-code\): filter threw Error: boom/,
    );
  });

  it('a process function that throws is a record failure too', async () => {
    const letters: DeadLetter[] = [];
    const env = environment(letters);
    const out: number[] = [];
    env
      .fromSource(fromCollection([change(1, 1), change(2, 2), change(3, 3)], { batchSize: 3 }))
      .keyBy((e) => e.after?.id ?? 0)
      .process<number>({
        processElement(e, _ctx, emit) {
          if (e.after?.id === 3) throw new RangeError('bad');
          emit.emit(e.after?.id ?? 0);
        },
      })
      .uid('counter')
      .sinkTo(collectSink(out));
    expect((await env.execute()).restarts).toBe(0);
    expect(out.sort()).toEqual([1, 2]);
    expect(letters.map((l) => [l.stage, l.errorKind, l.offset])).toEqual([['counter', 'user-code', '103']]);
  });

  for (const backend of ['memory', 'rocksdb'] as const) {
    it(`defect 1: a row nested 100,000 levels deep reaching upsert is dead-lettered as unstorable, not a stack overflow in a restart loop (${backend})`, async () => {
      const letters: DeadLetter[] = [];
      const env = environment(letters, 'dead-letter', backend);
      const out: TableChange<number, Row>[] = [];
      env
        .fromSource(
          fromCollection([change(1, 1), change(2, 2, { notes: deep(100_000) }), change(3, 3)], { batchSize: 3 }),
        )
        .keyBy((e) => e.key?.['id'] as number)
        .upsert()
        .uid('orders-table')
        .sinkTo(collectSink(out, { transactional: true }));
      const result = await env.execute();
      expect(result.restarts).toBe(0);
      expect(out.map((c) => c.key).sort()).toEqual([1, 3]);
      expect(letters.map((l) => [l.stage, l.errorKind, l.offset])).toEqual([['orders-table', 'unstorable', '102']]);
      expect(letters[0]?.value?.toString()).toMatch(/unserialisable value/);
    });
  }

  it('a record that makes a window aggregate throw is dead-lettered (stage = window uid) and leaves no trace in any of its windows', async () => {
    const letters: DeadLetter[] = [];
    const env = environment(letters);
    const out: WindowResult<string, number>[] = [];
    // Sliding windows: each record goes to two windows; the throw comes from the second add, after the first succeeded.
    let adds = 0;
    env
      .fromSource(fromCollection([change(1, 1), change(2, 2, { notes: 'poison' }), change(3, 3)], { batchSize: 3 }), {
        watermarks: WatermarkStrategy.boundedOutOfOrderness<ChangeEvent<Row>>(0).withTimestamps((e) => e.source.tsMs),
      })
      .keyBy((e) => e.after?.status ?? '')
      .window(SlidingEventTimeWindows.of(20_000, 10_000))
      .aggregate<number, number>({
        createAccumulator: () => 0,
        add: (e, acc) => {
          adds += 1;
          if (e.after?.notes === 'poison' && adds % 2 === 0) throw new RangeError('amount out of range');
          return acc + (e.after?.id ?? 0);
        },
        getResult: (acc) => acc,
      })
      .uid('revenue-windows')
      .sinkTo(collectSink(out));
    const result = await env.execute();
    expect(result.restarts).toBe(0);
    expect(letters.map((l) => [l.stage, l.errorKind, l.errorClass, l.offset])).toEqual([
      ['revenue-windows', 'user-code', 'RangeError', '102'],
    ]);
    expect(letters[0]?.reason).toMatch(/the window function threw RangeError: amount out of range/);
    expect(out.map((r) => r.result)).toEqual([4, 4]);
  });

  it('a value a reduce window cannot store is dead-lettered as unstorable, not a failed flush in a restart loop', async () => {
    const letters: DeadLetter[] = [];
    const env = environment(letters, 'dead-letter', 'rocksdb');
    const out: WindowResult<string, ChangeEvent<Row>>[] = [];
    env
      .fromSource(
        fromCollection([change(1, 1), change(2, 2, { notes: deep(100_000) }), change(3, 3)], { batchSize: 3 }),
        {
          watermarks: WatermarkStrategy.boundedOutOfOrderness<ChangeEvent<Row>>(0).withTimestamps((e) => e.source.tsMs),
        },
      )
      .keyBy((e) => e.after?.status ?? '')
      .window(TumblingEventTimeWindows.of(60_000))
      .reduce((a, b) => ((a.after?.id ?? 0) > (b.after?.id ?? 0) ? a : b))
      .uid('latest-order')
      .sinkTo(collectSink(out));
    const result = await env.execute();
    expect(result.restarts).toBe(0);
    expect(letters.map((l) => [l.stage, l.errorKind, l.offset])).toEqual([['latest-order', 'unstorable', '102']]);
    expect(out.map((r) => r.result.after?.id)).toEqual([3]);
  });
});
