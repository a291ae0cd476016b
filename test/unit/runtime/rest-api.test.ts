/**
 * The job's REST API on a real small job (an endless in-memory source → keyed count → collect
 * sink, memory state): routing (404/405), the token, body validation, and savepoint, stop and
 * cancel through HTTP.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StreamEnvironment, collectSink, valueState, type JobResult } from '../../../runtime/index.ts';
import { readRegistration } from '../../../runtime/rest/registration.ts';
import { countingSource } from '../../support/counting-source.ts';
import { quietEnvironment } from '../../support/quiet-job.ts';

const root = mkdtempSync(join(tmpdir(), 'cdcflow-rest-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface RunningJob {
  readonly url: string;
  readonly token: string;
  readonly done: Promise<JobResult>;
  readonly out: number[];
}

async function startJob(jobName: string, rest: { host?: string } = {}): Promise<RunningJob> {
  const env = quietEnvironment(root, jobName, { checkpoints: { intervalMs: 100 }, rest: { port: 0, ...rest } });
  const out: number[] = [];
  env
    .fromSource(countingSource({ pollDelayMs: 0, limit: 100 }), { uid: 'numbers' })
    .keyBy((n) => n % 3)
    .process({
      state: { count: valueState<number>() },
      processElement(n, ctx, emit) {
        ctx.state.count.update((ctx.state.count.value() ?? 0) + 1);
        emit.emit(n);
      },
    })
    .uid('count')
    .sinkTo(collectSink(out, { transactional: true }))
    .uid('collect');
  const done = env.execute();
  done.catch(() => {});
  for (let i = 0; i < 100; i++) {
    const registration = await readRegistration(root, jobName);
    if (registration !== undefined && 'file' in registration.token) {
      return { url: registration.url, token: readFileSync(registration.token.file, 'utf8').trim(), done, out };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${jobName} never registered its REST address`);
}

async function call(
  url: string,
  method: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  const response = await fetch(url, {
    method,
    headers,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    json: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : { text },
    headers: response.headers,
  };
}

async function untilCheckpoint(job: RunningJob, name: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const { json } = await call(`${job.url}/jobs/${name}`, 'GET');
    if (json['lastCompletedCheckpoint'] !== undefined) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no checkpoint completed');
}

describe('REST API', () => {
  it('serves the plan, routes unknown paths to 404 and wrong methods to 405, all as JSON', async () => {
    const job = await startJob('rest-routing');
    try {
      const jobs = await call(`${job.url}/jobs`, 'GET');
      expect(jobs.json).toEqual({ jobs: [{ id: 'rest-routing', name: 'rest-routing', status: 'running' }] });
      const info = await call(`${job.url}/jobs/rest-routing`, 'GET');
      expect(info.status).toBe(200);
      const plan = (
        info.json['plan'] as { operators: { uid: string; kind: string; parallelism: number; inputs: string[] }[] }
      ).operators;
      expect(plan.map((o) => [o.uid, o.kind, o.parallelism])).toEqual([
        ['numbers', 'source', 1],
        ['count', 'operator', 1],
        ['collect', 'sink', 1],
      ]);
      expect(plan[1]?.inputs).toEqual(['numbers']);
      expect(info.json['exceptions']).toEqual({ history: [] });

      const missing = await call(`${job.url}/nope`, 'GET');
      expect(missing.status).toBe(404);
      expect((missing.json['errors'] as string[])[0]).toContain('no such resource: /nope');
      expect((await call(`${job.url}/jobs/other-job`, 'GET')).status).toBe(404);

      const wrongMethod = await call(`${job.url}/jobs/rest-routing/savepoints`, 'GET');
      expect(wrongMethod.status).toBe(405);
      expect(wrongMethod.headers.get('allow')).toBe('POST');
      expect(wrongMethod.json['errors']).toEqual(['GET is not allowed on /jobs/rest-routing/savepoints; use POST']);
      expect((await call(`${job.url}/jobs/rest-routing`, 'DELETE')).status).toBe(405);
      expect((await call(`${job.url}/metrics`, 'POST')).status).toBe(405);

      expect((await call(`${job.url}/healthz`, 'GET')).json).toEqual({ text: 'ok\n' });
      expect((await call(`${job.url}/livez`, 'GET')).json).toEqual({ text: 'ok\n' });
      expect((await call(`${job.url}/livez`, 'POST')).status).toBe(405);
      expect((await call(`${job.url}/api/job`, 'GET')).json['job']).toBe('rest-routing');
      const metrics = await fetch(`${job.url}/metrics`);
      expect(await metrics.text()).toContain('cdcflow_');
    } finally {
      await call(`${job.url}/jobs/rest-routing`, 'PATCH', undefined, job.token);
      await job.done;
    }
  });

  it('needs the token for mutating calls and validates bodies', async () => {
    const job = await startJob('rest-auth');
    try {
      const anonymous = await call(`${job.url}/jobs/rest-auth/savepoints`, 'POST', {});
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
      expect((await call(`${job.url}/jobs/rest-auth/stop`, 'POST', {}, 'x'.repeat(32))).status).toBe(401);
      expect((await call(`${job.url}/jobs/rest-auth`, 'PATCH', undefined, 'wrong')).status).toBe(401);

      const badType = await call(`${job.url}/jobs/rest-auth/stop`, 'POST', { savepoint: 'yes' }, job.token);
      expect(badType.status).toBe(400);
      expect((badType.json['errors'] as string[])[0]).toMatch(/^invalid body: savepoint: .*expected boolean/);
      const unknown = await call(`${job.url}/jobs/rest-auth/stop`, 'POST', { savepont: true }, job.token);
      expect(unknown.json['errors']).toEqual(['invalid body: savepont: unknown field']);
      const badName = await call(`${job.url}/jobs/rest-auth/savepoints`, 'POST', { name: '../etc' }, job.token);
      expect(badName.status).toBe(400);
      expect((badName.json['errors'] as string[])[0]).toContain('name: may use only letters');
      const notJson = await call(`${job.url}/jobs/rest-auth/savepoints`, 'POST', '{ nope', job.token);
      expect(notJson.status).toBe(400);
      expect(notJson.json['errors']).toEqual(['the body is not valid JSON']);
      // Still running after all of that.
      expect((await call(`${job.url}/jobs/rest-auth`, 'GET')).json['state']).toBe('running');
    } finally {
      await call(`${job.url}/jobs/rest-auth`, 'PATCH', undefined, job.token);
      await job.done;
    }
  });

  it('takes a savepoint, lists and inspects it, then stops with a savepoint and unregisters', async () => {
    const job = await startJob('rest-savepoint');
    await untilCheckpoint(job, 'rest-savepoint');
    const taken = await call(
      `${job.url}/jobs/rest-savepoint/savepoints`,
      'POST',
      { name: 'before-upgrade' },
      job.token,
    );
    expect(taken.status).toBe(200);
    expect(taken.json['location']).toBe(join(root, 'rest-savepoint', 'savepoints', 'before-upgrade'));
    expect(existsSync(join(taken.json['location'] as string, '_metadata'))).toBe(true);

    // An unnamed savepoint: the location returned is where it really is (it said savepoints/<id> before).
    const unnamed = await call(`${job.url}/jobs/rest-savepoint/savepoints`, 'POST', undefined, job.token);
    expect(unnamed.json['location']).toMatch(/savepoints\/savepoint-\d+$/);
    expect(existsSync(join(unnamed.json['location'] as string, '_metadata'))).toBe(true);

    const listing = await call(`${job.url}/jobs/rest-savepoint/checkpoints`, 'GET');
    expect((listing.json['savepoints'] as { name: string }[]).map((s) => s.name)).toEqual([
      'before-upgrade',
      unnamed.json['location']?.toString().split('/').at(-1),
    ]);
    expect((listing.json['checkpoints'] as unknown[]).length).toBeGreaterThan(0);
    const detail = await call(`${job.url}/jobs/rest-savepoint/checkpoints/before-upgrade`, 'GET');
    expect(detail.json['kind']).toBe('savepoint');
    expect((detail.json['operators'] as { uid: string }[]).map((o) => o.uid).sort()).toEqual([
      'collect',
      'count',
      'numbers',
    ]);
    expect((await call(`${job.url}/jobs/rest-savepoint/checkpoints/99999`, 'GET')).status).toBe(404);

    const stopped = await call(
      `${job.url}/jobs/rest-savepoint/stop`,
      'POST',
      { savepoint: true, name: 'final' },
      job.token,
    );
    expect(stopped.status).toBe(200);
    expect(stopped.json).toMatchObject({
      state: 'stopped',
      savepointPath: join(root, 'rest-savepoint', 'savepoints', 'final'),
    });
    await job.done;
    expect(await readRegistration(root, 'rest-savepoint')).toBeUndefined();
    // Everything the source emitted before the final savepoint is committed.
    expect(job.out.length).toBe(100);
  });

  it('cancels through PATCH', async () => {
    const job = await startJob('rest-cancel');
    const cancelled = await call(`${job.url}/jobs/rest-cancel`, 'PATCH', undefined, job.token);
    expect(cancelled.status).toBe(202);
    expect(cancelled.json).toEqual({ state: 'cancelling' });
    await job.done;
    expect(await readRegistration(root, 'rest-cancel')).toBeUndefined();
  });

  it('refuses to serve a non-loopback address without a configured token', async () => {
    const env = StreamEnvironment.create({
      jobName: 'rest-exposed',
      checkpoints: { dir: root },
      state: { backend: 'memory' },
      rest: { port: 0, host: '0.0.0.0' },
      log: () => {},
    });
    env.fromSource(countingSource({ pollDelayMs: 0, limit: 1 })).sinkTo(collectSink([]));
    await expect(env.execute()).rejects.toThrow(/refusing to serve the REST API on 0\.0\.0\.0 without a token/);
  });
});
