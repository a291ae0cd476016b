/**
 * End-to-end freshness of the real pipeline, measured from outside the job: source commit in
 * Postgres → visible in the Postgres sink table (two-phase: at the checkpoint's commit).
 *   npx tsx scripts/debezium/freshness.ts            (CDCFLOW_FRESHNESS_SECONDS=60 CDCFLOW_FRESHNESS_RATE=2000)
 * Needs the stack with Debezium (`npm run stack -- up debezium`). A source table, connector and
 * sink table of its own are created and removed at the end.
 *
 * While the SQL workload writes `RATE` changed rows/s, a probe updates one of 20 probe rows every
 * 100 ms (each row once per 2 s) and notes when its COMMIT returned; an observer polls the sink
 * every 10 ms and notes when each probe's value (or a later one of the same row) became visible.
 * The first 10 s (snapshot, job start) are left out. Prints p50/p90/p99/max in ms.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { endpointsFromEnv } from '../stack/endpoints.ts';
import {
  createOrdersTable,
  ensureSourceDatabase,
  removeOrdersConnector,
  sourceDatabaseUrl,
  startOrdersConnector,
} from './orders-source.ts';
import { seedOrders, SqlWorkload } from './sql-workload.ts';

const seconds = Number(process.env['CDCFLOW_FRESHNESS_SECONDS'] ?? 60);
const rate = Number(process.env['CDCFLOW_FRESHNESS_RATE'] ?? 2000);
const WARMUP_MS = 10_000;
const PROBES = 20;
const PROBE_BASE = 1_900_000_000;
const run = randomBytes(3).toString('hex');
const endpoints = endpointsFromEnv();
const sourceUrl = sourceDatabaseUrl();
const sinkUrl = endpoints.databaseUrl;
const table = `cdcflow_fresh_${run}`;
const sinkTable = `cdcflow_fresh_${run}_sink`;
const jobName = `cdcflow-fresh-${run}`;
const work = mkdtempSync(join(tmpdir(), 'cdcflow-freshness-'));
const say = (line: string) => console.log(`[freshness] ${line}`);

await ensureSourceDatabase(sourceUrl);
await createOrdersTable(sourceUrl, table, 'full');
await seedOrders(sourceUrl, table, 2000, 3);
const source = new pg.Client({ connectionString: sourceUrl });
const sink = new pg.Client({ connectionString: sinkUrl });
await source.connect();
await sink.connect();
for (let i = 0; i < PROBES; i++)
  await source.query(`INSERT INTO ${table} (id, status, amount) VALUES ($1, 'probe-init', 0)`, [PROBE_BASE + i]);
const connector = await startOrdersConnector({
  connectUrl: endpoints.kafkaConnectUrl,
  databaseUrl: sourceUrl,
  table,
  name: `cdcflow-fresh-${run}`,
  decimalHandling: 'string',
  partitions: 3,
});
const job = spawn(process.execPath, ['--import', 'tsx', 'jobs/orders-to-postgres.ts'], {
  env: {
    ...process.env,
    KAFKA_BROKERS: endpoints.kafkaBrokers,
    DATABASE_URL: sinkUrl,
    CDCFLOW_TOPIC: connector.topic,
    CDCFLOW_GROUP_ID: jobName,
    CDCFLOW_JOB_NAME: jobName,
    CDCFLOW_PG_TABLE: sinkTable,
    CDCFLOW_CHECKPOINT_DIR: join(work, 'checkpoints'),
    CDCFLOW_STATE_DIR: join(work, 'state'),
    KAFKAJS_NO_PARTITIONER_WARNING: '1',
  },
  stdio: ['ignore', 'ignore', 'inherit'],
});

const committedAt = new Map<number, number>(); // probe seq → commit returned (ms)
const visibleAt = new Map<number, number>();
const started = Date.now();
let stop = false;
say(`${rate} changes/s for ${seconds} s on ${table}; job ${jobName} → ${sinkTable}`);
const workers = Number(process.env['CDCFLOW_FRESHNESS_WRITERS'] ?? 8);
const load = SqlWorkload.start({
  databaseUrl: sourceUrl,
  table,
  seed: 11,
  seededRows: 2000,
  maxChanges: rate * seconds * 2,
  maxDurationMs: seconds * 1000,
  ratePerSecond: rate,
  bigTransactionRows: 0,
  workers,
});

const probe = (async () => {
  for (let seq = 1; !stop; seq++) {
    await source.query(`UPDATE ${table} SET status = $2, updated_at = clock_timestamp() WHERE id = $1`, [
      PROBE_BASE + (seq % PROBES),
      `probe-${seq}`,
    ]);
    committedAt.set(seq, Date.now());
    await new Promise((r) => setTimeout(r, 100));
  }
})();
const observe = (async () => {
  let sinkExists = false;
  while (!stop || visibleAt.size < committedAt.size) {
    if (stop && Date.now() - started > (seconds + 60) * 1000) break;
    if (!sinkExists)
      sinkExists = (await sink.query('SELECT to_regclass($1) IS NOT NULL AS ok', [sinkTable])).rows[0]?.ok === true;
    if (sinkExists) {
      const { rows } = await sink.query<{ id: string; status: string }>(
        `SELECT id::text, status FROM ${sinkTable} WHERE id >= $1 AND id < $2`,
        [PROBE_BASE, PROBE_BASE + PROBES],
      );
      const now = Date.now();
      for (const row of rows) {
        const m = /^probe-(\d+)$/.exec(row.status);
        if (m === null) continue;
        const seen = Number(m[1]);
        // This row's probes up to `seen` are visible now (a later value of the row covers earlier ones).
        for (let seq = seen; seq > 0 && !visibleAt.has(seq); seq -= PROBES)
          if (committedAt.has(seq)) visibleAt.set(seq, now);
      }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
})();

const report = await load.done;
stop = true;
await probe;
await observe;
const latencies = [...committedAt]
  .filter(([seq, at]) => at - started >= WARMUP_MS && visibleAt.has(seq))
  .map(([seq, at]) => (visibleAt.get(seq) as number) - at)
  .sort((a, b) => a - b);
const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
say(
  `workload: ${report.changes} changed rows in ${(report.durationMs / 1000).toFixed(1)} s = ${Math.round(report.changes / (report.durationMs / 1000))} changes/s`,
);
say(
  `freshness (source COMMIT returned → row visible in the sink), ${latencies.length} probes after ${WARMUP_MS / 1000} s warm-up, ${committedAt.size - visibleAt.size} never seen: p50 ${q(0.5)} ms, p90 ${q(0.9)} ms, p99 ${q(0.99)} ms, max ${latencies.at(-1) ?? NaN} ms`,
);

job.kill('SIGKILL');
await new Promise((r) => job.once('close', r));
for (const { gid } of (
  await sink.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts WHERE left(gid, length($1)) = $1', [
    `${jobName}:`,
  ])
).rows)
  await sink.query(`ROLLBACK PREPARED '${gid}'`);
await removeOrdersConnector(endpoints.kafkaConnectUrl, sourceUrl, connector);
await source.query(`DROP TABLE IF EXISTS ${table}`);
await sink.query(`DROP TABLE IF EXISTS ${sinkTable}`);
await sink.query("DELETE FROM cdcflow_sink_commits WHERE sink LIKE $1 || ':%'", [jobName]).catch(() => undefined);
await source.end();
await sink.end();
rmSync(work, { recursive: true, force: true });
