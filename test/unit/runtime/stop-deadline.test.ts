/**
 * Issue 11: an API / CLI stop must never hang. Defect: a sink commit that never answers kept
 * `execute()` (and so `cdcflow run`) waiting forever after the stop deadline had cancelled the
 * job — the hard stop cannot interrupt an awaited commit. Now the job stops waiting for the
 * cancelled attempt after a short grace, logs what it gave up on, and `execute()` rejects with
 * StopDeadlineExceededError (non-zero exit); the REST stop call returns at the deadline.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { twoPhaseCommitSink, type TwoPhaseCommitter } from '../../../operators/sinks/two-phase-commit.ts';
import { LEASE_FILE, StopDeadlineExceededError, StreamEnvironment } from '../../../runtime/index.ts';
import { countingSource } from '../../support/counting-source.ts';

const work = mkdtempSync(join(tmpdir(), 'cdcflow-stop-deadline-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Commits normally until `hang.now`; then a commit never resolves (a row lock held by another session, a hung broker). */
function hangingSink(hang: { now: boolean; commitsStarted: number }) {
  return twoPhaseCommitSink<number, number>('hanging', (): TwoPhaseCommitter<number, number> => ({
    beginTransaction: () => Promise.resolve(),
    write: () => Promise.resolve(),
    preCommit: (checkpointId) => Promise.resolve(checkpointId),
    commit: () => {
      if (!hang.now) return Promise.resolve();
      hang.commitsStarted += 1;
      return new Promise<void>(() => undefined);
    },
    recover: () => Promise.resolve(),
    close: () => Promise.resolve(),
  }));
}

function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

describe('a stop whose sink commit never answers', () => {
  it('cancels at the deadline: the REST call returns, execute() rejects, the log says what it gave up on', async () => {
    const jobName = 'stop-deadline-hang';
    const dir = join(work, 'hang');
    const token = 'stop-deadline-token';
    const { logger, lines } = capture();
    const env = StreamEnvironment.create({
      jobName,
      checkpoints: { dir, intervalMs: 60_000 },
      state: { backend: 'memory' },
      lifecycle: { handleSignals: false, stopDeadlineMs: 1_000 },
      rest: { port: 0, token },
      logger,
    });
    const hang = { now: false, commitsStarted: 0 };
    env
      .fromSource(countingSource({ batch: 1, pollDelayMs: 5 }))
      .sinkTo(hangingSink(hang))
      .uid('hanging');
    const running = new Promise<void>((resolve) =>
      env.onEvent((e) => e.type === 'state' && e.state === 'running' && resolve()),
    );
    const done = env.execute().then(
      (result) => ({ result }),
      (error: unknown) => ({ error }),
    );
    await running;
    const { rest } = JSON.parse(readFileSync(join(dir, jobName, LEASE_FILE), 'utf8')) as { rest?: string };
    hang.now = true;
    const response = await fetch(`${rest}/jobs/${jobName}/stop`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(response.ok).toBe(false);
    expect(JSON.stringify(await response.json())).toContain('did not stop within 1000 ms');
    expect(hang.commitsStarted).toBeGreaterThan(0);
    const outcome = await done;
    expect('error' in outcome && outcome.error).toBeInstanceOf(StopDeadlineExceededError);
    expect((outcome as { error: StopDeadlineExceededError }).error.gaveUpOn).toMatch(
      /^the sink commits of final checkpoint \d+/,
    );
    const messages = lines.map((l) => String(l.msg));
    expect(
      messages.some((m) =>
        m.startsWith('stop deadline passed: cancelling the job; gave up on the sink commits of final checkpoint'),
      ),
    ).toBe(true);
    expect(messages.some((m) => m.startsWith('job cancelled: the stop missed its 1000 ms deadline'))).toBe(true);
  }, 30_000);
});
