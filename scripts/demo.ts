/**
 * npm run demo — the real pipeline, end to end, from a fresh clone:
 *   Postgres (a source table of its own) → Debezium's Postgres connector on Kafka Connect → Kafka
 *   → cdcflow (jobs/orders-demo.ts: upsert + 1-minute revenue windows with a late side output)
 *   → Postgres through two-phase sinks.
 * A SQL load runs against the source; the job is SIGKILLed once mid-load and restarted (it restores
 * its last checkpoint, resolves the sink transaction the kill left prepared, and catches up); the
 * demo ends with reconcile comparing the source table with the sink table.
 *
 * It brings up what it needs (`npm run stack -- up debezium`: Kafka, Postgres, Kafka Connect) unless
 * KAFKA_BROKERS / DATABASE_URL / KAFKA_CONNECT_URL name running ones. Everything it creates has a
 * name of this run (`cdcflow_demo_<run>`, topic `cdcflow-demo-<run>.public.…`): it never deletes a
 * table or topic it did not create. At the end it removes its connector, replication slot and
 * publication, and (unless CDCFLOW_DEMO_KEEP=1) its tables and topics.
 * Env: CDCFLOW_DEMO_SECONDS (load duration, default 75), CDCFLOW_DEMO_RATE (changes/s, default 1000),
 * CDCFLOW_DEMO_UI_PORT (the job's HTTP server and web UI port; default any free one, printed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { resolve as resolvePath } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { formatReconcileReport, reconcileTables } from '../runtime/reconcile/index.ts';
import {
  createOrdersTable,
  ensureSourceDatabase,
  removeOrdersConnector,
  sourceDatabaseUrl,
  startOrdersConnector,
  type OrdersConnectorNames,
} from './debezium/orders-source.ts';
import { seedOrders, SqlWorkload } from './debezium/sql-workload.ts';
import { waitForKey } from './debezium/topic-watch.ts';
import { endpointsFromEnv } from './stack/endpoints.ts';
import { selectServices } from './stack/services/index.ts';
import { up } from './stack/stack.ts';

// 75 s: event time must pass at least one 1-minute window end (plus the 5 s bound) for revenue rows to appear.
const seconds = Number(process.env['CDCFLOW_DEMO_SECONDS'] ?? 75);
const rate = Number(process.env['CDCFLOW_DEMO_RATE'] ?? 1000);
const keep = process.env['CDCFLOW_DEMO_KEEP'] === '1';
const run = randomBytes(3).toString('hex');
const started = Date.now();
const step = (text: string) => console.log(`\n[demo +${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);
const END_MARKER = 1_999_999_999;

step('bringing up Kafka, Postgres and Kafka Connect with Debezium (npm run stack -- up debezium)');
if (process.env['KAFKA_BROKERS'] === undefined || process.env['KAFKA_CONNECT_URL'] === undefined) {
  await up(selectServices(['debezium'], true), (line) => console.log(`  ${line}`));
}
const endpoints = endpointsFromEnv();
const brokers = endpoints.kafkaBrokers.split(',');
const sourceUrl = sourceDatabaseUrl();
const sinkUrl = endpoints.databaseUrl;
const names = {
  source: `cdcflow_demo_${run}`,
  sink: `cdcflow_demo_${run}_orders`,
  revenue: `cdcflow_demo_${run}_revenue`,
  late: `cdcflow_demo_${run}_late`,
  connector: `cdcflow-demo-${run}`,
  job: `cdcflow-demo-${run}`,
  dir: resolvePath(`.cdcflow/demo-${run}`),
};
let connector: OrdersConnectorNames | undefined;
let job: ChildProcess | undefined;
let exitCode = 1;

try {
  step(`source table ${names.source} in ${new URL(sourceUrl).pathname.slice(1)} (REPLICA IDENTITY FULL), 2,000 orders`);
  await ensureSourceDatabase(sourceUrl);
  await createOrdersTable(sourceUrl, names.source, 'full');
  await seedOrders(sourceUrl, names.source, 2000, 7);

  step(
    `registering Debezium connector ${names.connector} (pgoutput, slot + filtered publication of its own, decimal.handling.mode=string)`,
  );
  connector = await startOrdersConnector({
    connectUrl: endpoints.kafkaConnectUrl,
    databaseUrl: sourceUrl,
    table: names.source,
    name: names.connector,
    decimalHandling: 'string',
    partitions: 3,
  });
  console.log(`  streaming into topic ${connector.topic}`);

  step(
    `SQL load: ${rate} changed rows/s for ${seconds} s (inserts, updates, deletes, multi-row and interleaved transactions, a 5,000-row transaction, primary-key changes, TOASTed notes, negative amounts)`,
  );
  const load = SqlWorkload.start({
    databaseUrl: sourceUrl,
    table: names.source,
    seed: 7,
    seededRows: 2000,
    maxChanges: rate * seconds,
    maxDurationMs: seconds * 1000,
    ratePerSecond: rate,
    bigTransactionRows: 5000,
  });

  const jobEnv = {
    KAFKA_BROKERS: endpoints.kafkaBrokers,
    DATABASE_URL: sinkUrl,
    CDCFLOW_TOPIC: connector.topic,
    CDCFLOW_GROUP_ID: names.job,
    CDCFLOW_JOB_NAME: names.job,
    CDCFLOW_CHECKPOINT_DIR: `${names.dir}/checkpoints`,
    CDCFLOW_STATE_DIR: `${names.dir}/state`,
    CDCFLOW_PG_TABLE: names.sink,
    CDCFLOW_REVENUE_TABLE: names.revenue,
    CDCFLOW_LATE_TABLE: names.late,
    KAFKAJS_NO_PARTITIONER_WARNING: '1',
  };
  step(
    'starting the cdcflow job (jobs/orders-demo.ts): upsert → Postgres two-phase, revenue windows → Postgres two-phase, late events → Postgres',
  );
  job = startJob(jobEnv);
  await waitForLine(job, /orders checkpoint \d+ committed/, 120_000);
  await sleep(Math.max(2000, (seconds * 1000) / 3 - (Date.now() - started)));
  step(`SIGKILL the job (pid ${job.pid}) in the middle of the load; writes go on`);
  job.kill('SIGKILL');
  await new Promise((resolve) => job?.once('close', resolve));
  console.log(
    `  sink has ${await count(sinkUrl, names.sink)} rows, source ${await count(sourceUrl, names.source)}; prepared sink transactions left by the kill: ${(await prepared(sinkUrl, names.job)).length}`,
  );

  await sleep(2000);
  step('restarting the job: it restores its last checkpoint and commits or rolls back what the kill left prepared');
  job = startJob(jobEnv);
  const report = await load.done;
  step(`load done: ${report.changes} changed rows in ${report.committed} commits (${report.rolledBack} rolled back)`);
  await pgQuery(
    sourceUrl,
    `INSERT INTO ${names.source} (id, status, amount, created_at, updated_at) VALUES ($1, 'end-marker', 0, now(), now())`,
    [END_MARKER],
  );
  const delivered = await waitForKey(brokers, connector.topic, `{"id":${END_MARKER}}`);
  console.log(
    `  Debezium delivered every commit (${delivered} messages on the topic); waiting for the sink to catch up`,
  );
  const deadline = Date.now() + 120_000;
  let result = await reconcile();
  while (!result.equal && Date.now() < deadline) {
    await sleep(1000);
    result = await reconcile();
  }
  step('reconcile: source table vs sink table, by primary key and every column');
  console.log(formatReconcileReport(result));
  const revenue = await pgQuery<{ windows: string; revenue: string | null; orders: string | null }>(
    sinkUrl,
    `SELECT count(*) AS windows, sum(revenue)::text AS revenue, sum(orders)::text AS orders FROM ${names.revenue}`,
  );
  const late = await count(sinkUrl, names.late);
  console.log(
    `  revenue: ${revenue[0]?.windows ?? 0} (window, status) rows, ${revenue[0]?.orders ?? 0} order events summed to ${revenue[0]?.revenue ?? 0}; late side output: ${late} events`,
  );
  console.log(
    `  sink transactions still prepared: ${(await prepared(sinkUrl, names.job)).length} (the running job commits its open checkpoint next)`,
  );
  console.log(
    result.equal
      ? '\nOK: the sink equals the source, after a SIGKILL under load.'
      : '\nMISMATCH: the sink differs from the source (see above).',
  );
  exitCode = result.equal ? 0 : 1;
} catch (error) {
  console.error(`\ndemo failed: ${error instanceof Error ? error.message : String(error)}`);
} finally {
  step('cleaning up what this run created');
  job?.kill('SIGKILL');
  if (job !== undefined)
    await new Promise((resolve) =>
      job?.exitCode !== null || job.signalCode !== null ? resolve(undefined) : job.once('close', resolve),
    );
  // A killed two-phase job can leave a prepared transaction; with the tables kept, a bounded run would
  // resolve it, but here we own it: roll back this run's prepared transactions so no lock lingers.
  for (const gid of await prepared(sinkUrl, names.job).catch(() => []))
    await pgQuery(sinkUrl, `ROLLBACK PREPARED '${gid.replace(/'/g, "''")}'`).catch(() => undefined);
  if (connector !== undefined)
    await removeOrdersConnector(endpoints.kafkaConnectUrl, sourceUrl, connector).catch((e: unknown) =>
      console.error(`  connector cleanup: ${String(e)}`),
    );
  if (!keep) {
    await pgQuery(sourceUrl, `DROP TABLE IF EXISTS ${names.source}`).catch(() => undefined);
    await pgQuery(sinkUrl, `DROP TABLE IF EXISTS ${names.sink}, ${names.revenue}, ${names.late}`).catch(
      () => undefined,
    );
    await pgQuery(sinkUrl, "DELETE FROM cdcflow_sink_commits WHERE sink LIKE $1 || ':%'", [names.job]).catch(
      () => undefined,
    );
    if (connector !== undefined) await deleteTopics([connector.topic, connector.transactionTopic]);
    rmSync(names.dir, { recursive: true, force: true });
    console.log(
      `  removed connector ${names.connector}, its slot and publication, tables ${names.source}, ${names.sink}, ${names.revenue}, ${names.late}, topic ${connector?.topic ?? '-'}`,
    );
  } else {
    console.log(
      `  removed connector ${names.connector} (slot, publication); kept tables ${names.source} (source), ${names.sink}, ${names.revenue}, ${names.late} and topic ${connector?.topic ?? '-'}`,
    );
    console.log(
      `  npm run reconcile -- --source ${sourceUrl} --source-table ${names.source} --sink ${sinkUrl} --sink-table ${names.sink}`,
    );
  }
  process.exit(exitCode);
}

function startJob(env: Record<string, string>): ChildProcess {
  const uiPort = process.env['CDCFLOW_DEMO_UI_PORT'];
  const child = spawn(process.execPath, ['--import', 'tsx', 'jobs/orders-demo.ts'], {
    env: { ...process.env, ...(uiPort === undefined ? {} : { CDCFLOW_REST_PORT: uiPort }), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue;
    createInterface({ input: stream }).on('line', (line) => {
      child.emit('job-line', line);
      const rest = /REST API on (http:\/\/\S+)/.exec(line);
      if (rest !== null) console.log(`  web UI of the job (live while it runs): ${rest[1]}/`);
      // The per-checkpoint lines are many; show the ones that tell the story.
      if (!/checkpoint \d+ (prepared|committed)/.test(line) || /restore/.test(line)) console.log(`  | ${line}`);
    });
  }
  return child;
}

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the job printed no ${String(pattern)} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onLine = (line: string) => {
      if (!pattern.test(line)) return;
      clearTimeout(timer);
      child.off('job-line', onLine);
      resolve();
    };
    child.on('job-line', onLine);
    child.once('close', (code) =>
      reject(new Error(`the job exited (${String(code)}) before printing ${String(pattern)}`)),
    );
  });
}

function reconcile() {
  return reconcileTables({
    source: { url: sourceUrl, table: names.source },
    sink: { url: sinkUrl, table: names.sink },
  });
}

async function pgQuery<R extends pg.QueryResultRow>(url: string, sql: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

async function count(url: string, table: string): Promise<number> {
  return Number((await pgQuery<{ n: string }>(url, `SELECT count(*) AS n FROM ${table}`))[0]?.n ?? 0);
}

async function prepared(url: string, jobName: string): Promise<string[]> {
  return (
    await pgQuery<{ gid: string }>(url, 'SELECT gid FROM pg_prepared_xacts WHERE left(gid, length($1)) = $1', [
      `${jobName}:`,
    ])
  ).map((r) => r.gid);
}

async function deleteTopics(topics: string[]): Promise<void> {
  const admin = new Kafka({ clientId: 'cdcflow-demo', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const ours = topics.filter((t) => existing.has(t));
    if (ours.length > 0) await admin.deleteTopics({ topics: ours });
    await admin.deleteGroups([names.job]).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
