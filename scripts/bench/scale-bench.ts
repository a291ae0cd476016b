/**
 * npm run bench -- scale [--events 40000] [--keys 4000] [--processes 1,2,3]
 * Group mode (docs/group-mode.md) on this machine: jobs/orders-projection-group.ts in 1, 2 and 3
 * processes over the 6-partition bench topic into the Postgres two-phase sink, each run with a
 * fresh group, table and checkpoint root. Reports events/s from the start of the processes until
 * the table holds every oracle row, and the CPU the processes used (user+system, /proc). Then the
 * failover: 2 processes, one SIGKILLed after its first commit; the time until a survivor claims
 * its partitions and until it commits for one of them (processing again elsewhere).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { generateWorkload } from '../workload/generator.ts';
import { projectionOracle } from '../workload/oracle.ts';
import { benchWorkload, ensureWorkloadTopic } from './bench-topic.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '40000' },
    keys: { type: 'string', default: '4000' },
    processes: { type: 'string', default: '1,2,3' },
  },
});
const events = Number(values.events);
const keys = Number(values.keys);
const brokers = (process.env['KAFKA_BROKERS'] ?? '127.0.0.1:19092').split(',');
const databaseUrl = process.env['DATABASE_URL'] ?? 'postgres://cdcflow:cdcflow@127.0.0.1:15432/cdcflow';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TICKS = 100; // USER_HZ on Linux

interface Proc {
  child: ChildProcess;
  lines: string[];
  cpuSeconds: () => number;
}

function startProcess(env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', 'jobs/orders-projection-group.ts'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  for (const s of [child.stdout, child.stderr])
    createInterface({ input: s }).on('line', (l) => lines.push(`${Date.now()} ${l}`));
  let last = 0;
  const cpuSeconds = () => {
    try {
      const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      last = (Number(f[11]) + Number(f[12])) / TICKS;
    } catch {
      /* exited: keep the last reading */
    }
    return last;
  };
  return { child, lines, cpuSeconds };
}

async function rowCount(table: string): Promise<number> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    return Number(
      (await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`).catch(() => ({ rows: [{ n: '0' }] })))
        .rows[0]?.n ?? 0,
    );
  } finally {
    await db.end();
  }
}

async function dropTable(table: string): Promise<void> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  await db.query(`DROP TABLE IF EXISTS ${table}`).finally(() => db.end());
}

const { topic, messages } = await ensureWorkloadTopic(brokers, events, keys);
const expected = projectionOracle(generateWorkload(benchWorkload(events, keys))).size;

function runEnv(tag: string, work: string): Record<string, string> {
  const name = `bench-scale-${tag}-${Date.now().toString(36)}`;
  return {
    KAFKA_BROKERS: brokers.join(','),
    DATABASE_URL: databaseUrl,
    CDCFLOW_TOPIC: topic,
    CDCFLOW_GROUP_ID: name,
    CDCFLOW_JOB_NAME: name,
    CDCFLOW_PG_TABLE: name.replace(/-/g, '_'),
    CDCFLOW_CHECKPOINT_DIR: join(work, 'checkpoints'),
    CDCFLOW_STATE_DIR: join(work, 'state'),
    CDCFLOW_SESSION_TIMEOUT_MS: '6000',
    KAFKAJS_NO_PARTITIONER_WARNING: '1',
    CDCFLOW_LOG_LEVEL: 'warn',
  };
}

async function stopAll(procs: Proc[]): Promise<void> {
  for (const p of procs) p.child.kill('SIGTERM');
  await Promise.all(
    procs.map((p) => new Promise((r) => (p.child.exitCode !== null ? r(undefined) : p.child.once('exit', r)))),
  );
}

console.log(
  `scale: ${messages} messages on ${topic} (6 partitions), ${expected} rows expected; ${process.env['NODE_ENV'] ?? ''}`,
);
const results: string[] = [];
for (const n of values.processes
  .split(',')
  .filter((x) => x !== '')
  .map(Number)) {
  const work = mkdtempSync(join(tmpdir(), 'cdcflow-scale-'));
  const env = runEnv(`n${n}`, work);
  const started = Date.now();
  const procs = Array.from({ length: n }, () => startProcess(env));
  let done = false;
  while (Date.now() - started < 600_000) {
    if ((await rowCount(env['CDCFLOW_PG_TABLE'] as string)) >= expected) {
      done = true;
      break;
    }
    for (const p of procs) p.cpuSeconds();
    await sleep(250);
  }
  const seconds = (Date.now() - started) / 1000;
  const cpu = procs.reduce((s, p) => s + p.cpuSeconds(), 0);
  await stopAll(procs);
  const line = `${n} process(es): ${done ? '' : 'NOT DONE '}${seconds.toFixed(1)} s to every row (start-up included), ${(messages / seconds).toFixed(0)} events/s, CPU ${cpu.toFixed(1)} s (${((cpu / seconds) * 100).toFixed(0)} % of one core)`;
  console.log(line);
  results.push(line);
  await dropTable(env['CDCFLOW_PG_TABLE'] as string);
  rmSync(work, { recursive: true, force: true });
}

// Failover: two processes, SIGKILL one after its first commit.
{
  const work = mkdtempSync(join(tmpdir(), 'cdcflow-scale-'));
  const env = runEnv('failover', work);
  const [a, b] = [startProcess(env), startProcess(env)] as [Proc, Proc];
  const committed = /(\S+-\d+) epoch (\d+): checkpoint \d+ committed/;
  const deadline = Date.now() + 120_000;
  // Wait until both own partitions and b has committed.
  const ownedBy = (p: Proc) => {
    const owned = new Set<string>();
    for (const l of p.lines) {
      const claim = /partition (\S+): claimed epoch/.exec(l);
      if (claim !== null) owned.add(claim[1] as string);
      const gone = /partition (\S+): (task stopped|task finished|fenced)/.exec(l);
      if (gone !== null) owned.delete(gone[1] as string);
    }
    return owned;
  };
  while (
    Date.now() < deadline &&
    !(
      b.lines.some((l) => committed.test(l)) &&
      ownedBy(a).size > 0 &&
      ownedBy(b).size > 0 &&
      ownedBy(a).size + ownedBy(b).size >= 6
    )
  )
    await sleep(100);
  const victim = [...ownedBy(b)];
  const mark = a.lines.length;
  const killedAt = Date.now();
  b.child.kill('SIGKILL');
  let claimedAt: number | undefined;
  let processingAt: number | undefined;
  while (Date.now() - killedAt < 60_000 && processingAt === undefined) {
    for (const l of a.lines.slice(mark)) {
      const at = Number(l.slice(0, l.indexOf(' ')));
      const claim = /partition (\S+): claimed epoch/.exec(l);
      if (claim !== null && victim.includes(claim[1] as string)) claimedAt ??= at;
      const c = committed.exec(l);
      if (c !== null && victim.includes(c[1] as string) && Number(c[2]) > 1) processingAt ??= at;
    }
    await sleep(50);
  }
  const line = `failover (2 processes, SIGKILL, session timeout 6 s): claimed after ${claimedAt === undefined ? 'never' : `${((claimedAt - killedAt) / 1000).toFixed(1)} s`}, committing again after ${processingAt === undefined ? 'never (no data left?)' : `${((processingAt - killedAt) / 1000).toFixed(1)} s`}`;
  console.log(line);
  results.push(line);
  await stopAll([a]);
  await dropTable(env['CDCFLOW_PG_TABLE'] as string);
  rmSync(work, { recursive: true, force: true });
}
console.log(`\n${results.join('\n')}`);
