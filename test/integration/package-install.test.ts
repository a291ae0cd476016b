/**
 * cdcflow as a user gets it: `npm pack` (which builds dist/), `cdcflow init` a project outside
 * the repository that depends on the tarball, install it, type-check it against the package's
 * declarations only, run its unit test (cdcflow/testing), and run its job with the installed
 * `cdcflow` command against the real Kafka and Postgres until rows arrive.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { createTopic, produce, testKafka } from '../support/source-jobs.ts';

const repo = new URL('../..', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'cdcflow-package-'));
const npm = (args: string[], cwd: string) =>
  execFileSync('npm', args, { cwd, stdio: 'pipe', encoding: 'utf8', timeout: 240_000 });

describe('the published package', () => {
  const { kafkaBrokers, databaseUrl } = testEndpoints();
  const table = uniqueName('pkg_orders').replace(/-/g, '_');
  const db = new pg.Client({ connectionString: databaseUrl });

  afterAll(async () => {
    await db.query(`drop table if exists ${table}`).catch(() => undefined);
    await db.end().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  it('installs into a new project: init, type-check on .d.ts, unit test, run the job into Postgres', async () => {
    npm(['pack', '--pack-destination', work, '--loglevel=error'], repo);
    const tarball = join(work, readdirSync(work).find((f) => f.endsWith('.tgz')) ?? 'missing.tgz');
    const app = join(work, 'app');
    execFileSync(
      process.execPath,
      [join(repo, 'runtime/cli/cdcflow.mjs'), 'init', app, '--cdcflow-version', `file:${tarball}`],
      { stdio: 'pipe' },
    );
    npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], app);

    // The project's own TypeScript, its own tsconfig, cdcflow's declarations (no sources) only.
    execFileSync(process.execPath, [join(app, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', app], {
      cwd: app,
      stdio: 'pipe',
      encoding: 'utf8',
    });
    const unit = execFileSync(process.execPath, [join(app, 'node_modules/vitest/vitest.mjs'), 'run'], {
      cwd: app,
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1' },
    });
    expect(unit).toMatch(/1 passed/);

    const kafka = testKafka(uniqueName('pkg'));
    const topic = uniqueName('pkg-orders');
    await createTopic(kafka, topic, 1);
    const records = [...generateWorkload({ seed: 11, keys: 50, events: 200, partitions: 1 })];
    await produce(
      kafka,
      topic,
      records.map((r) => ({ key: r.key, value: r.value })),
    );
    await db.connect();

    const job = spawn(
      join(app, 'node_modules/.bin/cdcflow'),
      [
        'run',
        'jobs/orders.ts',
        '--config',
        'cdcflow.config.json',
        '--set',
        `topic=${topic}`,
        '--set',
        `table=${table}`,
        '--set',
        `name=${uniqueName('pkg-job')}`,
      ],
      {
        cwd: app,
        env: { ...process.env, KAFKA_BROKERS: kafkaBrokers, DATABASE_URL: databaseUrl },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    job.stdout.on('data', (d: Buffer) => (output += d.toString()));
    job.stderr.on('data', (d: Buffer) => (output += d.toString()));
    try {
      let rows = 0;
      const deadline = Date.now() + 90_000;
      while (rows === 0 && Date.now() < deadline && job.exitCode === null) {
        await new Promise((r) => setTimeout(r, 1_000));
        rows = Number(
          (await db.query<{ n: string }>(`select count(*) as n from ${table}`).catch(() => ({ rows: [{ n: '0' }] })))
            .rows[0]?.n ?? 0,
        );
      }
      expect(rows, output).toBeGreaterThan(0);
    } finally {
      job.kill('SIGTERM');
      await new Promise((r) => job.once('exit', r));
    }
  });
});
