/**
 * The web UI in a real browser (Debian's chromium driven by playwright-core, no browser download)
 * on a real small job: Debezium JSON orders on Kafka (one undecodable message among them) →
 * upsert → two-phase Postgres sink, served by the job's own HTTP server. Checks that the status,
 * the job graph with live rates, the checkpoint table (growing between two reads), the charts and
 * the dead letters render; screenshots go to test-artifacts/ (git-ignored) and, with
 * CDCFLOW_UI_SCREENSHOT=1, to docs/images/ui.png for the README.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import pg from 'pg';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { ordersProjectionJob, type Order } from '../../jobs/orders-projection.ts';
import { StreamEnvironment, postgresSink, type JobResult } from '../../runtime/index.ts';
import { readRegistration } from '../../runtime/rest/registration.ts';
import { generateWorkload, type WorkloadRecord } from '../../scripts/workload/generator.ts';
import { buildUi } from '../../scripts/build-ui.mjs';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';

const CHROMIUM = process.env['CDCFLOW_CHROMIUM'] ?? '/usr/bin/chromium';
const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'web-ui');
const endpoints = testEndpoints();
const name = uniqueName('web-ui').replace(/-/g, '_');
const topic = `cdcflow-${name}`;
const table = `ui_${name}`;
const root = mkdtempSync(join(tmpdir(), 'cdcflow-web-ui-'));
const kafka = new Kafka({ clientId: name, brokers: endpoints.kafkaBrokers.split(','), logLevel: logLevel.NOTHING });
const db = new pg.Client({ connectionString: endpoints.databaseUrl });

let producer: Producer;
let browser: Browser | undefined;
let env: StreamEnvironment | undefined;
let done: Promise<JobResult> | undefined;
const feeding = { stop: false };
let feeder: Promise<void> | undefined;

/** Live orders: commit times near now, so freshness is real. */
function* orders(): Generator<WorkloadRecord> {
  yield* generateWorkload({
    seed: 7,
    keys: 500,
    events: 20_000,
    partitions: 2,
    startTsMs: Date.now(),
    tickMs: 2,
    lateFraction: 0,
    concurrency: 1,
  });
}

async function send(records: readonly WorkloadRecord[]): Promise<void> {
  // Chunks stay under the broker's max message (batch) size.
  for (let i = 0; i < records.length; i += 300) {
    await producer.send({
      topic,
      acks: -1,
      messages: records.slice(i, i + 300).map((r) => ({ partition: r.partition, key: r.key, value: r.value })),
    });
  }
}

beforeAll(async () => {
  expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (see .ci/run)`).toBe(true);
  await buildUi();
  mkdirSync(ARTIFACTS, { recursive: true });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true });
  await admin.disconnect();
  producer = kafka.producer();
  await producer.connect();
  await db.connect();
  await db.query(
    `CREATE TABLE ${table} (id bigint PRIMARY KEY, customer_id bigint, status text, amount numeric(12,2), currency char(3), shipping_address text, notes text, created_at timestamptz, updated_at timestamptz)`,
  );
  const stream = orders();
  // Not for-of: leaving one with `break` would close the generator.
  const take = (n: number): WorkloadRecord[] => {
    const out: WorkloadRecord[] = [];
    for (let next = stream.next(); !next.done; next = stream.next()) if (out.push(next.value) >= n) break;
    return out;
  };
  await send(take(3_000));
  // A message Debezium never wrote: it goes to the dead-letter topic and shows in the UI.
  await producer.send({ topic, messages: [{ partition: 0, key: '{"id":1}', value: 'not json at all' }] });
  // A steady trickle while the browser looks, bounded in count and time.
  feeder = (async () => {
    const until = Date.now() + 45_000;
    while (!feeding.stop && Date.now() < until) {
      const batch = take(150);
      if (batch.length === 0) return;
      await send(batch);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  env = StreamEnvironment.create({
    jobName: name,
    checkpoints: { dir: root, intervalMs: 500 },
    state: { backend: 'memory', dir: join(root, 'state') },
    rest: { port: 0 },
    log: () => {},
  });
  const sink = postgresSink<number, Order>({ table, primaryKey: ['id'], connectionString: endpoints.databaseUrl });
  ordersProjectionJob(env, { topic, groupId: name, bounded: false, sessionTimeoutMs: 6_000 }, sink);
  done = env.execute();
  done.catch(() => {});
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}, 90_000);

afterAll(async () => {
  const t0 = Date.now();
  const mark = (what: string) =>
    process.env['CDCFLOW_UI_DEBUG'] === '1' && console.log(`afterAll ${what} +${Date.now() - t0}ms`);
  feeding.stop = true;
  await within(10_000, async () => {
    await feeder;
  });
  mark('feeder');
  await within(10_000, async () => {
    await browser?.close();
  });
  mark('browser');
  if (env !== undefined) {
    const job = env;
    await within(20_000, async () => {
      await job.cancel();
      await done;
    });
  }
  mark('job');
  await within(5_000, async () => {
    await producer?.disconnect();
  });
  // A cancelled job leaves its prepared transaction for the next start's recovery; it holds the
  // table's row locks, so DROP TABLE would wait for it forever.
  const prepared = await db
    .query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts WHERE left(gid, length($1)) = $1', [`${name}:`])
    .catch(() => ({ rows: [] }));
  for (const { gid } of prepared.rows) await db.query(`ROLLBACK PREPARED '${gid}'`).catch(() => {});
  await db.query("SET lock_timeout = '5s'").catch(() => {});
  await db.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
  await db.end().catch(() => {});
  mark('db');
  // Bounded: a slow broker must not hang the suite on cleanup.
  const admin = kafka.admin();
  await within(15_000, async () => {
    await admin.connect();
    await admin.deleteTopics({ topics: [topic, `${topic}.dlq`], timeout: 10_000 });
  });
  await admin.disconnect().catch(() => {});
  mark('topics');
  rmSync(root, { recursive: true, force: true });
}, 60_000);

async function within(ms: number, work: () => Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work().catch(() => {}), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

async function restUrl(): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const registration = await readRegistration(root, name);
    if (registration !== undefined) return registration.url;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the job never registered its REST address');
}

async function completedCheckpoints(page: Page): Promise<number> {
  const text = (await page.getByTestId('checkpoint-counts').textContent()) ?? '';
  return Number(/(\d+) completed/.exec(text)?.[1] ?? Number.NaN);
}

describe('web UI', () => {
  it('shows a running job live: status, graph with rates, growing checkpoint table, charts, dead letters', async () => {
    const url = await restUrl();
    const page = await (browser as Browser).newPage({ viewport: { width: 1600, height: 1300 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(url);
    const shoot = async (file: string): Promise<void> =>
      void (await page.screenshot({ path: join(ARTIFACTS, file), fullPage: true }));
    onTestFailed(() => shoot('failure.png'));

    await expect.poll(() => page.getByTestId('job-state').textContent(), { timeout: 20_000 }).toBe('RUNNING');
    // The graph: source → upsert → sink, laid out, with a live input rate on the upsert.
    await expect.poll(() => page.getByTestId('graph-node').count()).toBe(3);
    const uids = await page
      .getByTestId('graph-node')
      .evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-uid')));
    expect(uids).toEqual(expect.arrayContaining(['orders-source', 'orders-upsert']));
    await expect
      .poll(() => page.locator('[data-uid="orders-upsert"] [data-testid="node-in"]').textContent(), { timeout: 20_000 })
      .toMatch(/^[1-9][\d.]*k?\/s$/);

    // Checkpoints: rows in the table, and the count grows between two reads.
    await expect.poll(() => page.getByTestId('checkpoint-row').count(), { timeout: 20_000 }).toBeGreaterThan(1);
    const before = await completedCheckpoints(page);
    await expect.poll(() => completedCheckpoints(page), { timeout: 15_000 }).toBeGreaterThan(before);
    const firstRow = await page.getByTestId('checkpoint-row').first().textContent();
    expect(firstRow).toMatch(/completed/);

    // Charts drew something (uPlot renders a canvas per chart) and the throughput chart has data.
    for (const chart of ['checkpoint-chart', 'freshness-chart', 'commit-chart', 'throughput-chart']) {
      await expect.poll(() => page.locator(`[data-testid="${chart}"] canvas`).count()).toBeGreaterThan(0);
    }
    await expect
      .poll(() => page.locator('[data-testid="throughput-chart"] .no-data').count(), { timeout: 10_000 })
      .toBe(0);
    await expect
      .poll(() => page.locator('[data-testid="freshness-chart"] .no-data').count(), { timeout: 15_000 })
      .toBe(0);

    // The undecodable message: counted by reason, with its sample.
    await expect.poll(() => page.getByTestId('dead-letter-row').count(), { timeout: 15_000 }).toBeGreaterThan(0);
    await expect.poll(() => page.getByTestId('dead-letter-samples').textContent()).toContain(`${topic}/0@`);

    await page.waitForTimeout(3_000); // a few more points on the charts for the picture
    await page.screenshot({ path: join(ARTIFACTS, 'overview-full.png'), fullPage: true });
    await page.screenshot({ path: join(ARTIFACTS, 'overview-top.png') });
    if (process.env['CDCFLOW_UI_SCREENSHOT'] === '1')
      await page.screenshot({ path: join(process.cwd(), 'docs', 'images', 'ui.png') });
    expect(errors).toEqual([]);

    // The JSON the page polls, checked directly too.
    const overview = (await (await fetch(`${url}/jobs/${name}/overview`)).json()) as {
      plan: unknown[];
      checkpoints: { status: string; syncMs?: number }[];
      deadLetters: unknown[];
    };
    expect(overview.plan).toHaveLength(3);
    expect(overview.checkpoints.filter((c) => c.status === 'completed').length).toBeGreaterThan(1);
    expect(overview.checkpoints.some((c) => c.syncMs !== undefined)).toBe(true);
    expect(overview.deadLetters.length).toBeGreaterThan(0);
    await page.close();
  }, 90_000);
});
