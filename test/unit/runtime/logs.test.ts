/** The job log: kafkajs lines bridged into pino, and checkpoint lines that do not spam. */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { kafkajsLogCreator, loggerFor } from '../../../operators/logger.ts';
import { CheckpointLog } from '../../../runtime/lifecycle/checkpoint-log.ts';

function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n'))
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('job logs', () => {
  it('bridge kafkajs entries into the job logger with level, namespace and fields', async () => {
    const { logger, lines } = capture();
    const log = kafkajsLogCreator(loggerFor({ job: 'orders', uid: 'source', subtask: 1 }, logger))(2);
    log({
      namespace: 'Connection',
      level: 2,
      label: 'WARN',
      log: { message: 'Connection timeout', timestamp: 'x', broker: 'b:9092' },
    });
    log({ namespace: 'Consumer', level: 4, label: 'INFO', log: { message: 'Starting', groupId: 'g' } });
    await settle();
    expect(
      lines.map((l) => [l['level'], l['component'], l['namespace'], l['msg'], l['job'], l['uid'], l['subtask']]),
    ).toEqual([
      [40, 'kafkajs', 'Connection', 'Connection timeout', 'orders', 'source', 1],
      [30, 'kafkajs', 'Consumer', 'Starting', 'orders', 'source', 1],
    ]);
    expect(lines[0]?.['broker']).toBe('b:9092');
    expect(typeof lines[0]?.['time']).toBe('number');
  });

  it('log the first checkpoint, then every N-th, every abort and the recovery after it', async () => {
    const { logger, lines } = capture();
    const progress = new CheckpointLog(logger, 60);
    const completed = (id: number) =>
      progress.onStats({ checkpointId: id, kind: 'checkpoint', status: 'completed', durationMs: 5, bytes: 10 });
    for (let id = 1; id <= 120; id++) completed(id);
    progress.onStats({
      checkpointId: 121,
      kind: 'checkpoint',
      status: 'aborted',
      durationMs: 5,
      bytes: 0,
      failureReason: 'timeout',
    });
    completed(122);
    completed(123);
    await settle();
    expect(lines.map((l) => l['msg'])).toEqual([
      'checkpoint 1 completed',
      'checkpoint 60 completed',
      'checkpoint 120 completed',
      'checkpoint 121 aborted: timeout',
      'checkpoint 122 completed: checkpoints complete again (failing since 121)',
    ]);
  });

  it('log the coordinator’s failures (trigger, callback, retention) as warnings, not silence', async () => {
    const { logger, lines } = capture();
    const progress = new CheckpointLog(logger, 60);
    progress.onEvent({ type: 'retention-failed', checkpointId: 7, error: new Error('EACCES: permission denied') });
    progress.onEvent({ type: 'trigger-failed', kind: 'savepoint', error: new Error('source closed') });
    progress.onEvent({ type: 'callback-failed', callback: 'notifyComplete', checkpointId: 8, error: 'sink gone' });
    progress.onEvent({ type: 'triggered', checkpointId: 9, kind: 'checkpoint' });
    await settle();
    expect(lines.map((l) => [l['level'], l['msg']])).toEqual([
      [
        40,
        'retention after checkpoint 7 failed (old checkpoints stay on disk until it works): EACCES: permission denied',
      ],
      [40, 'could not trigger a savepoint: source closed'],
      [40, 'checkpoint 8: notifyComplete failed: sink gone'],
    ]);
  });
});
