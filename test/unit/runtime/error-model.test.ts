/**
 * The error model (issue 10): `retriable` decides whether a failed attempt restarts (defect 4:
 * a non-retriable sink mapping error was restarted 10 times), every error says where it happened,
 * and errors keep their class and fields across a worker thread.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CheckpointAbortedError } from '../../../checkpoints/errors.ts';
import { changeMapper } from '../../../operators/sinks/postgres/change-mapping.ts';
import { PostgresSinkError } from '../../../operators/sinks/postgres/pg-session.ts';
import type { SinkDefinition } from '../../../operators/sinks/sink.ts';
import type { TableChange } from '../../../operators/table-change.ts';
import '../../../runtime/parallel/error-classes.ts';
import { SubtaskFailedError } from '../../../runtime/parallel/errors.ts';
import { StreamEnvironment, fromCollection } from '../../../runtime/index.ts';
import { RunFolders, startParallelJob, type JobSpec } from '../../support/parallel-runs.ts';
import {
  CdcflowError,
  classifyError,
  fromWireError,
  locateError,
  toWireError,
  UnclassifiedError,
} from '../../../state/index.ts';
import { streamPosition } from '../../../state/change-position.ts';

type Row = Readonly<Record<string, unknown>>;

/** The Postgres sink's own mapping (operators/sinks/postgres/change-mapping.ts), without a database. */
function mappingSink(attempts: { n: number }): SinkDefinition<TableChange<unknown, Row>> {
  const map = changeMapper<TableChange<unknown, Row>>(['id'], undefined, undefined);
  return {
    name: 'pg-mapping',
    createOperator: () => ({
      open() {
        attempts.n += 1;
      },
      processBatch(batch) {
        for (const record of batch) map(record.value);
      },
    }),
  };
}

describe('retriable decides', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('defect 4: a delete with a null key and null before fails once, without restarts, and says where', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdcflow-error-model-'));
    dirs.push(dir);
    const lines: string[] = [];
    const attempts = { n: 0 };
    const env = StreamEnvironment.create({
      jobName: 'error-model-defect-4',
      checkpoints: { dir: join(dir, 'chk'), intervalMs: 50 },
      state: { backend: 'memory' },
      restart: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 10 },
      log: (line) => lines.push(line),
    });
    const poison: TableChange<unknown, Row> = {
      kind: 'delete',
      key: null,
      previous: null,
      position: streamPosition(0, 7),
      sourceTsMs: 1_700_000_000_000,
    };
    env.fromSource(fromCollection([poison], { batchSize: 1 })).sinkTo(mappingSink(attempts));
    const failure = await env.execute().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(PostgresSinkError);
    expect((failure as PostgresSinkError).retriable).toBe(false);
    // Before: restarted maxAttempts times (10 by default), each failing the same way.
    expect(attempts.n).toBe(1);
    expect(lines.some((l) => /restart \d/.test(l))).toBe(false);
    expect(
      lines.some(
        (l) =>
          /not retriable/.test(l) && /operator 'sink-pg-mapping/.test(l) && /subtask 0/.test(l) && /key null/.test(l),
      ),
    ).toBe(true);
    const where = (failure as CdcflowError).where;
    expect(where?.operator).toMatch(/pg-mapping/);
    expect(where?.subtask).toBe(0);
    const health = env.health();
    expect(health.status).toBe('failed');
    expect(health.healthy).toBe(false);
    expect(health.lastError).toMatchObject({ class: 'PostgresSinkError', retriable: false, domain: 'user' });
  });

  it('a transient error still restarts (and the job then finishes)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdcflow-error-model-'));
    dirs.push(dir);
    let failures = 0;
    const env = StreamEnvironment.create({
      jobName: 'error-model-transient',
      checkpoints: { dir: join(dir, 'chk'), intervalMs: 50 },
      state: { backend: 'memory' },
      restart: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 10 },
      log: () => undefined,
    });
    env.fromSource(fromCollection([1, 2, 3], { batchSize: 1 })).sinkTo({
      name: 'flaky',
      createOperator: () => ({
        processBatch() {
          if (failures++ === 0)
            throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
        },
      }),
    });
    const result = await env.execute();
    expect(result.restarts).toBe(1);
    expect(env.health()).toMatchObject({
      status: 'finished',
      restarts: 1,
      lastError: { class: 'Error', retriable: true, domain: 'external' },
    });
  });
});

describe('classification', () => {
  it.each([
    [
      'a CdcflowError says it itself',
      new CdcflowError('x', { domain: 'user', retriable: false }),
      { domain: 'user', retriable: false },
    ],
    [
      'a refused connection',
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      { domain: 'external', retriable: true },
    ],
    [
      'fetch failed (TypeError caused by a socket error)',
      new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }) }),
      { domain: 'external', retriable: true },
    ],
    [
      'user code: a TypeError',
      new TypeError("Cannot read properties of undefined (reading 'id')"),
      { domain: 'user', retriable: false },
    ],
    [
      'Postgres invalid input syntax (22P02)',
      Object.assign(new Error('invalid input syntax for type numeric'), { code: '22P02', severity: 'ERROR' }),
      { domain: 'user', retriable: false },
    ],
    [
      'Postgres serialization failure (40001)',
      Object.assign(new Error('could not serialize access'), { code: '40001', severity: 'ERROR' }),
      { domain: 'external', retriable: true },
    ],
    [
      'kafkajs: coordinator not available',
      Object.assign(new Error('The coordinator is not available'), { name: 'KafkaJSProtocolError', retriable: true }),
      { domain: 'external', retriable: true },
    ],
    [
      'kafkajs gave up connecting (a broker outage: the job restart is for that)',
      Object.assign(new Error('Connection error'), { name: 'KafkaJSNumberOfRetriesExceeded', retriable: false }),
      { domain: 'external', retriable: true },
    ],
    [
      'kafkajs: SASL login refused',
      Object.assign(new Error('SASL SCRAM SHA256 authentication failed'), {
        name: 'KafkaJSSASLAuthenticationError',
        retriable: false,
      }),
      { domain: 'user', retriable: false },
    ],
    [
      'TLS: a certificate the CA did not sign',
      Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }),
      { domain: 'user', retriable: false },
    ],
    ['unknown: restart (bounded by the budget)', new Error('something odd'), { domain: 'internal', retriable: true }],
  ])('%s', (_label, error, expected) => {
    expect(classifyError(error)).toEqual(expected);
  });

  it('locateError keeps what a deeper layer said and wraps foreign errors with their message and class name', () => {
    const deep = locateError(new TypeError('boom'), {
      operator: 'sink',
      subtask: 1,
      record: { topic: 't', partition: 2, offset: '17', key: '{"id":5}' },
    });
    expect(deep).toBeInstanceOf(UnclassifiedError);
    expect(deep.message).toBe('boom');
    expect((deep as UnclassifiedError).originalName).toBe('TypeError');
    expect(deep.retriable).toBe(false);
    const outer = locateError(deep, { operator: 'source', subtask: 1 });
    expect(outer).toBe(deep);
    expect(outer.where).toEqual({
      operator: 'sink',
      subtask: 1,
      record: { topic: 't', partition: 2, offset: '17', key: '{"id":5}' },
    });
  });
});

describe('errors across a worker thread', () => {
  it('keep their class, domain, retriable, location, fields and cause', () => {
    const original = locateError(
      new CheckpointAbortedError(42, 'timed out', {
        cause: new PostgresSinkError('refused', '22P02', { domain: 'user', retriable: false }),
      }),
      {
        operator: 'orders-sink',
        subtask: 3,
      },
    );
    // What postMessage does to the wire form: a structured clone.
    const rebuilt = fromWireError(structuredClone(toWireError(original)));
    expect(rebuilt).toBeInstanceOf(CheckpointAbortedError);
    const typed = rebuilt as CheckpointAbortedError;
    expect(typed.checkpointId).toBe(42);
    expect(typed.retriable).toBe(true);
    expect(typed.domain).toBe(original.domain);
    expect(typed.message).toBe(original.message);
    expect(typed.where).toEqual({ operator: 'orders-sink', subtask: 3 });
    expect(typed.cause).toBeInstanceOf(PostgresSinkError);
    expect((typed.cause as PostgresSinkError).sqlState).toBe('22P02');
    // A subtask failure carries the rebuilt error, and its retriable.
    const failed = new SubtaskFailedError(3, typed.message, typed);
    expect(failed.retriable).toBe(true);
    expect(failed.where).toEqual({ operator: 'orders-sink', subtask: 3 });
    expect(failed.message).toMatch(/^subtask 3 failed: checkpoint 42 aborted: timed out/);
  });
});

describe('a non-retriable failure in a worker thread', () => {
  const folders = new RunFolders();
  afterAll(() => folders.cleanup());

  it('fails a parallel job without restarting it, naming its class and subtask (before: every worker failure restarted)', async () => {
    const dirs = folders.make();
    const spec: JobSpec = {
      job: 'projection',
      // Long enough (24 batches × 40 ms) that subtask 1 commits a checkpoint before its input ends: the failure comes after it.
      source: { kind: 'collection', workload: { keys: 800, events: 6_000, seed: 5 } },
      throttleMs: 40,
      intervalMs: 200,
      failOnceMarker: `${dirs.root}/failed-once`,
      failNonRetriable: true,
    };
    const job = startParallelJob(spec, dirs, 2);
    const exit = await job.waitForExit(120_000);
    expect(exit.code).not.toBe(0);
    const output = job.tail(80);
    expect(output, output).not.toMatch(/restart 1\//);
    expect(output, output).toMatch(
      /attempt failed \(CdcflowError \[user, not retriable\] subtask 1 failed: injected non-retriable sink failure.*subtask 1\)\); not restarting/,
    );
  }, 150_000);
});
