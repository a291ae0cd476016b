/**
 * The web UI's routes on a real small job (an endless in-memory source → keyed process → collect
 * sink, memory state): the page and its assets, and the overview snapshot the page polls.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamEnvironment, collectSink, valueState } from '../../../runtime/index.ts';
import { readRegistration } from '../../../runtime/rest/registration.ts';
import type { JobOverview } from '../../../runtime/ui/overview-types.ts';
import { buildUi } from '../../../scripts/build-ui.mjs';
import { countingSource } from '../../support/counting-source.ts';
import { quietEnvironment } from '../../support/quiet-job.ts';

const root = mkdtempSync(join(tmpdir(), 'cdcflow-ui-routes-'));
const jobName = 'ui-routes';
let env: StreamEnvironment;
let url: string;

beforeAll(async () => {
  await buildUi();
  env = quietEnvironment(root, jobName, { checkpoints: { intervalMs: 100 }, rest: { port: 0 } });
  env
    .fromSource(countingSource({ pollDelayMs: 20 }), { uid: 'numbers' })
    .keyBy((n) => n % 3)
    .process({
      state: { count: valueState<number>() },
      processElement(n, ctx, emit) {
        ctx.state.count.update((ctx.state.count.value() ?? 0) + 1);
        emit.emit(n);
      },
    })
    .uid('count')
    .sinkTo(collectSink<number>([], { transactional: true }))
    .uid('collect');
  env.execute().catch(() => {});
  for (let i = 0; i < 100 && url === undefined; i++) {
    const registration = await readRegistration(root, jobName);
    if (registration !== undefined) url = registration.url;
    else await new Promise((r) => setTimeout(r, 50));
  }
});

afterAll(async () => {
  await env.cancel();
  rmSync(root, { recursive: true, force: true });
});

async function overview(): Promise<JobOverview> {
  return (await (await fetch(`${url}/jobs/${jobName}/overview`)).json()) as JobOverview;
}

describe('web UI routes', () => {
  it('serves the page and its bundled assets, and nothing else from the asset folder', async () => {
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('/ui/app.js');
    const script = await fetch(`${url}/ui/app.js`);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect((await script.text()).length).toBeGreaterThan(10_000);
    expect((await fetch(`${url}/ui/app.css`)).status).toBe(200);
    for (const path of ['/ui/missing.js', '/ui/..%2Fui-routes.ts', '/ui/app.js.LEGAL.txt'])
      expect((await fetch(`${url}${path}`)).status, path).toBe(404);
  });

  it('answers an overview with the plan, metrics, busy time and a checkpoint history that grows', async () => {
    let first = await overview();
    for (let i = 0; i < 100 && first.checkpoints.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 50));
      first = await overview();
    }
    expect(first.job).toBe(jobName);
    expect(first.state).toBe('running');
    expect(first.plan.map((op) => op.uid)).toEqual(['numbers', 'count', 'collect']);
    expect(first.plan.find((op) => op.uid === 'count')?.inputs).toEqual(['numbers']);
    expect(
      first.metrics['cdcflow_records_in_total']?.some((s) => s.labels['operator'] === 'count' && (s.value ?? 0) > 0),
    ).toBe(true);
    expect(first.metrics['cdcflow_operator_busy_seconds_total']?.some((s) => s.labels['operator'] === 'count')).toBe(
      true,
    );
    expect(first.metrics['cdcflow_records_in_total']?.[0]?.labels['job']).toBeUndefined();
    expect(Object.keys(first.metrics).some((name) => name.startsWith('cdcflow_process_'))).toBe(false);
    const completed = first.checkpoints.filter((c) => c.status === 'completed');
    expect(completed.length).toBeGreaterThanOrEqual(2);
    expect(completed.every((c) => c.durationMs >= 0 && c.bytes >= 0)).toBe(true);
    expect(first.subtasks).toEqual([]);
    expect(first.health.healthy).toBe(true);

    const last = first.checkpoints.at(-1)?.id ?? 0;
    let later = await overview();
    for (let i = 0; i < 100 && (later.checkpoints.at(-1)?.id ?? 0) <= last; i++) {
      await new Promise((r) => setTimeout(r, 50));
      later = await overview();
    }
    expect(later.checkpoints.at(-1)?.id).toBeGreaterThan(last);
    expect(later.checkpoints.some((c) => c.syncMs !== undefined && c.asyncMs !== undefined)).toBe(true);
  });

  it('answers 404 for another job name', async () => {
    const response = await fetch(`${url}/jobs/other/overview`);
    expect(response.status).toBe(404);
    expect(((await response.json()) as { errors: string[] }).errors[0]).toContain(`this server runs '${jobName}'`);
  });
});
