/** How the CLI tells an operator that a job is not running, for each way it can be absent. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliContext } from '../../../../runtime/cli/cli-context.ts';
import { CliError, NOT_RUNNING } from '../../../../runtime/cli/cli-error.ts';
import { JobClient } from '../../../../runtime/cli/job-client.ts';
import { jobArgs, withoutFlags } from '../../../../runtime/cli/run-job.ts';

const root = mkdtempSync(join(tmpdir(), 'cdcflow-cli-unit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const ctx = cliContext({ checkpointRoot: root });

async function refusal(job: string): Promise<CliError> {
  const error: unknown = await JobClient.connect(ctx, job).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof CliError)) throw new Error(`expected a CliError, got ${String(error)}`);
  expect(error.exitCode).toBe(NOT_RUNNING);
  return error;
}

describe('finding a job', () => {
  it('names the root and the jobs it holds when the job is unknown', async () => {
    mkdirSync(join(root, 'orders'), { recursive: true });
    expect((await refusal('ordres')).message).toBe(
      `no job 'ordres' under the checkpoint root ${root} (it holds: orders); a job started with another root needs --checkpoint-root or CDCFLOW_CHECKPOINT_DIR`,
    );
  });

  it('says a job without registration is not running, and where its checkpoints are', async () => {
    expect((await refusal('orders')).message).toBe(
      `job 'orders' is not running (no REST registration in ${join(root, 'orders')}); its checkpoints: cdcflow checkpoints list orders`,
    );
  });

  it('recognises the registration of a killed process', async () => {
    mkdirSync(join(root, 'killed'), { recursive: true });
    const registration = {
      job: 'killed',
      url: 'http://127.0.0.1:9',
      pid: 2 ** 22 + 17,
      host: hostname(),
      startedAtMs: 1,
      token: { configured: true },
      command: { module: '/x.ts', args: [], cwd: '/' },
    };
    writeFileSync(join(root, 'killed', 'rest.json'), JSON.stringify(registration));
    expect((await refusal('killed')).message).toContain(
      `its last process (pid ${registration.pid}) is gone without unregistering`,
    );
  });

  it('says so when a live registrant does not answer', async () => {
    mkdirSync(join(root, 'silent'), { recursive: true });
    const registration = {
      job: 'silent',
      url: 'http://127.0.0.1:9',
      pid: process.pid,
      host: hostname(),
      startedAtMs: 1,
      token: { configured: true },
      command: { module: '/x.ts', args: [], cwd: '/' },
    };
    writeFileSync(join(root, 'silent', 'rest.json'), JSON.stringify(registration));
    expect((await refusal('silent')).message).toContain(
      `job 'silent' is not running: nothing answers at http://127.0.0.1:9`,
    );
  });
});

describe('passing flags to a job', () => {
  it('turns parsed options back into the job command line', () => {
    expect(jobArgs({ fromSavepoint: 'sp', parallelism: '2', fresh: false, set: ['a=1', 'b=2'] })).toEqual([
      '--parallelism',
      '2',
      '--from-savepoint',
      'sp',
      '--set',
      'a=1',
      '--set',
      'b=2',
    ]);
  });

  it('drops the flags a rescale replaces, with their values', () => {
    expect(
      withoutFlags(
        ['--name', 'x', '--parallelism', '1', '--from-savepoint=sp', '--fresh', '--set', 'topic=t'],
        ['parallelism', 'from-savepoint', 'fresh'],
      ),
    ).toEqual(['--name', 'x', '--set', 'topic=t']);
  });
});
