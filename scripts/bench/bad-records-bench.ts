/**
 * npm run bench -- bad-records [--events 40000] [--keys 8000] [--copies 10] [--runs 3] [--classes all|light|no-sink]
 *
 * The projection into Postgres (two-phase), as in test/integration/bad-records.test.ts, over a
 * clean topic and over the same records mixed with the malformed-input corpus (`--copies` rounds
 * of every class: with the defaults ~400 bad records, 1 % of the messages, ~35 MB of them in the
 * oversized and burst classes; `--classes light` leaves those out, `no-sink` also the classes the
 * table refuses). Reports good events per second of each (median over `--runs` rounds, clean and
 * mixed interleaved) and the ratio. First it measures what the sink's guarded path (taken after a
 * refusal: a savepoint per 100-row statement) would cost a clean stream: the same rows written
 * through TableWriter in one transaction, guarded and bare (the path a clean stream takes).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { pgConnect } from '../../operators/sinks/postgres/pg-session.ts';
import { TableWriter, type KeyedChange } from '../../operators/sinks/postgres/table-writer.ts';
import { StreamEnvironment, debeziumSource, postgresSink } from '../../runtime/index.ts';
import { endpointsFromEnv } from '../stack/endpoints.ts';
import { CORPUS_SOURCE_CHECKS, STAGES, checkOrderForProjection } from '../workload/bad-records.ts';
import { mixedWorkload, produceMixed } from '../workload/bad-records-mix.ts';
import { fmt, machine, median } from './bench-format.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '40000' },
    keys: { type: 'string', default: '8000' },
    copies: { type: 'string', default: '10' },
    runs: { type: 'string', default: '3' },
    classes: { type: 'string', default: 'all' },
  },
});
const events = Number(values.events);
const keys = Number(values.keys);
const copies = Number(values.copies);
const runs = Number(values.runs);
const light = values.classes === 'light' || values.classes === 'no-sink';
const noSink = values.classes === 'no-sink';
const PARTITIONS = 2;

const endpoints = endpointsFromEnv();
const kafka = new Kafka({
  clientId: 'bad-records-bench',
  brokers: endpoints.kafkaBrokers.split(','),
  logLevel: logLevel.NOTHING,
});
const suffix = Date.now().toString(36);
const workload = { seed: 7, keys, events, partitions: PARTITIONS };
const heavy = new Set([
  'burst of 8 x 200 KB garbage',
  'oversized record (1.5 MB)',
  'column nested 100,000 levels deep',
]);

const clean = mixedWorkload(workload, 0);
const mixed = mixedWorkload(workload, copies);
const keep = (b: { className: string; projection: { stage: string } }) =>
  !(light && heavy.has(b.className)) && !(noSink && b.projection.stage === STAGES.sink);
const mixedEntries = mixed.entries.filter((e) => !('bad' in e) || keep(e.bad));
const badCount = mixedEntries.length - clean.entries.length;
const topics = { clean: `bench-bad-records-clean-${suffix}`, mixed: `bench-bad-records-mixed-${suffix}` };
await produceMixed(kafka, topics.clean, PARTITIONS, clean.entries);
await produceMixed(kafka, topics.mixed, PARTITIONS, mixedEntries);

const DDL = (
  table: string,
) => `CREATE TABLE ${table} (id bigint PRIMARY KEY, customer_id bigint, status text, amount numeric(12,2), currency char(3),
  shipping_address text, notes text, created_at timestamptz, updated_at timestamptz)`;

async function sql(text: string): Promise<void> {
  const db = new pg.Client({ connectionString: endpoints.databaseUrl });
  await db.connect();
  try {
    await db.query(text);
  } finally {
    await db.end();
  }
}

/** Refused rows the sink screened out before writing, and open transactions it had to rewrite, per mixed run. */
const sinkPaths: { screened: number; rewrites: number }[] = [];

async function counter(
  metrics: {
    registry: { getSingleMetric(name: string): { get(): Promise<{ values: { value: number }[] }> } | undefined };
  },
  name: string,
): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  return metric === undefined ? 0 : (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}

async function runOnce(kind: 'clean' | 'mixed', run: number): Promise<number> {
  const table = `bench_bad_${kind}_${suffix}_${run}`;
  await sql(DDL(table));
  const dir = mkdtempSync(join(tmpdir(), 'cdcflow-bench-bad-'));
  const jobName = `bench-bad-${kind}-${suffix}-${run}`;
  try {
    const env = StreamEnvironment.create({
      jobName,
      restore: 'none',
      checkpoints: { dir: join(dir, 'chk'), intervalMs: 1000 },
      state: { backend: 'rocksdb', dir: join(dir, 'state') },
      restart: { maxAttempts: 0 },
      deadLetters: { topic: `${topics[kind]}.dlq` },
      log: () => undefined,
    });
    env
      .fromSource(
        debeziumSource({ topics: [topics[kind]], groupId: jobName, bounded: 'latest', checks: CORPUS_SOURCE_CHECKS }),
        { uid: 'orders-source' },
      )
      .map(checkOrderForProjection)
      .uid(STAGES.checkOrder)
      .keyBy((e) => e.key?.['id'] as number)
      .upsert()
      .uid(STAGES.upsert)
      .sinkTo(postgresSink({ table, primaryKey: ['id'], connectionString: endpoints.databaseUrl }))
      .uid(STAGES.sink);
    const started = performance.now();
    const result = await env.execute();
    const seconds = (performance.now() - started) / 1000;
    if (result.restarts !== 0) throw new Error(`${kind} run restarted`);
    if (kind === 'mixed') {
      sinkPaths.push({
        screened: await counter(result.metrics, 'cdcflow_postgres_sink_screened_out_total'),
        rewrites: await counter(result.metrics, 'cdcflow_postgres_sink_transaction_rewrites_total'),
      });
    }
    return clean.good.length / seconds;
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await sql(`DROP TABLE IF EXISTS ${table}`);
    await sql(`DELETE FROM cdcflow_sink_commits WHERE sink LIKE '${jobName}:%'`).catch(() => undefined);
  }
}

/** Rows/s through TableWriter in one transaction: the guarded path, then the bare statements. */
async function savepointCost(): Promise<{ withSavepoints: number; bare: number }> {
  const table = `bench_bad_savepoints_${suffix}`;
  await sql(DDL(table));
  const session = await pgConnect(endpoints.databaseUrl)();
  try {
    const writer = await TableWriter.describe(session, table, ['id'], {
      positionColumn: undefined,
      deletes: 'delete',
      deletedColumn: 'deleted',
      maxRowsPerStatement: 1000,
    });
    const rows = clean.good.flatMap((r) => (r.event?.after === null || r.event === null ? [] : [r.event.after]));
    const changes = new Map<number, KeyedChange>();
    for (const row of rows)
      changes.set(row.id, {
        kind: 'upsert',
        keyId: String(row.id),
        row: { ...row },
        position: undefined,
        sourceTsMs: undefined,
      });
    const batch = [...changes.values()];
    const timed = async (write: () => Promise<unknown>): Promise<number> => {
      await session.query('BEGIN');
      const started = performance.now();
      await write();
      const seconds = (performance.now() - started) / 1000;
      await session.query('ROLLBACK');
      return batch.length / seconds;
    };
    const rounds: { withSavepoints: number; bare: number }[] = [];
    for (let i = 0; i < Math.max(3, runs); i++) {
      const withSavepoints = await timed(() => writer.apply(session, batch));
      const bare = await timed(async () => {
        for (const statement of writer.statements(batch)) await session.query(statement.sql, statement.params);
      });
      rounds.push({ withSavepoints, bare });
    }
    return { withSavepoints: median(rounds.map((r) => r.withSavepoints)), bare: median(rounds.map((r) => r.bare)) };
  } finally {
    await session.close();
    await sql(`DROP TABLE IF EXISTS ${table}`);
  }
}

const cost = await savepointCost();
console.log(
  `sink writes on a clean stream: ${fmt(cost.withSavepoints)} rows/s on the guarded path (savepoint per 100-row statement), ${fmt(cost.bare)} rows/s bare (${fmt((cost.withSavepoints / cost.bare) * 100, 1)} %)`,
);

const rates: Record<'clean' | 'mixed', number[]> = { clean: [], mixed: [] };
try {
  for (let run = 0; run < runs; run++) {
    for (const kind of run % 2 === 0 ? (['clean', 'mixed'] as const) : (['mixed', 'clean'] as const)) {
      const rate = await runOnce(kind, run);
      rates[kind].push(rate);
      console.log(`run ${run + 1} ${kind}: ${fmt(rate)} good events/s`);
    }
  }
} finally {
  const admin = kafka.admin();
  await admin.connect();
  await admin
    .deleteTopics({ topics: [topics.clean, topics.mixed, `${topics.clean}.dlq`, `${topics.mixed}.dlq`] })
    .catch(() => undefined);
  await admin.disconnect();
}
const [c, m] = [median(rates.clean), median(rates.mixed)];
console.log(
  `\nprojection into Postgres two-phase, ${fmt(clean.good.length)} good messages, ${fmt(badCount)} bad (${values.classes} classes), median of ${runs}`,
);
console.log(`clean: ${fmt(c)} events/s   mixed: ${fmt(m)} events/s   mixed/clean: ${fmt((m / c) * 100, 1)} %`);
console.log(
  `sink per mixed run: ${sinkPaths.map((p) => `${p.screened} rows screened out, ${p.rewrites} transaction rewrites`).join('; ')}`,
);
console.log(machine());
