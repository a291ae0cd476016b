import { chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { ensureDebianPackage } from '../debian.ts';
import { stackPorts } from '../endpoints.ts';
import { stackPaths } from '../paths.ts';
import { run, startDaemon } from '../process.ts';
import type { StackService } from '../service.ts';

const port = stackPorts.postgres;
// As root the server runs as the `postgres` user, who cannot enter /root: keep its data in /var/lib.
const dataDir = process.getuid?.() === 0 ? '/var/lib/cdcflow/postgres' : stackPaths.data('postgres');

/**
 * The settings cdcflow depends on: logical decoding for Debezium, prepared transactions for the
 * two-phase Postgres sink. Everything else stays at the distribution's defaults.
 */
const settings = `
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = '${dataDir}'
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
max_prepared_transactions = 64
max_connections = 200
shared_buffers = 128MB
`;

/** Postgres refuses to run as root; as root we run it as the Debian package's `postgres` user. */
async function runAs(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number((await run('id', ['-u', 'postgres'])).trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).trim());
  return { uid, gid };
}

async function binDir(): Promise<string> {
  await ensureDebianPackage('/usr/lib/postgresql', 'postgresql');
  const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
  const newest = versions[0];
  if (newest === undefined)
    throw new Error('no PostgreSQL server under /usr/lib/postgresql; apt-get install postgresql');
  return join('/usr/lib/postgresql', newest, 'bin');
}

async function install(): Promise<void> {
  const bin = await binDir();
  if (existsSync(join(dataDir, 'PG_VERSION'))) return;
  mkdirSync(dataDir, { recursive: true });
  const user = await runAs();
  if (user !== undefined) chownSync(dataDir, user.uid, user.gid);
  await run(
    join(bin, 'initdb'),
    ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-locale'],
    user ?? {},
  );
  writeFileSync(join(dataDir, 'postgresql.auto.conf'), settings);
  if (user !== undefined) chownSync(join(dataDir, 'postgresql.auto.conf'), user.uid, user.gid);
}

async function start(): Promise<void> {
  const bin = await binDir();
  const user = await runAs();
  startDaemon({ service: 'postgres', command: join(bin, 'postgres'), args: ['-D', dataDir], ...(user ?? {}) });
}

async function query(database: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database, connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

async function ready(): Promise<boolean> {
  const result = await query(
    'postgres',
    "select current_setting('wal_level') as wal, current_setting('max_prepared_transactions') as prepared",
  );
  const row = result.rows[0] as { wal: string; prepared: string } | undefined;
  return row !== undefined;
}

/** The role and databases the tests, jobs and demo use; created once, idempotently. */
async function provision(): Promise<void> {
  const roles = await query('postgres', "select 1 from pg_roles where rolname = 'cdcflow'");
  if (roles.rowCount === 0) await query('postgres', "create role cdcflow login replication password 'cdcflow'");
  for (const database of ['cdcflow', 'ecommerce']) {
    const found = await query('postgres', `select 1 from pg_database where datname = '${database}'`);
    if (found.rowCount === 0) await query('postgres', `create database ${database} owner cdcflow`);
  }
  const check = await query(
    'postgres',
    "select current_setting('wal_level') as wal, current_setting('max_prepared_transactions')::int as prepared",
  );
  const row = check.rows[0] as { wal: string; prepared: number };
  if (row.wal !== 'logical' || row.prepared <= 0) {
    throw new Error(
      `postgres on ${port} runs with wal_level=${row.wal}, max_prepared_transactions=${row.prepared}; cdcflow needs logical and > 0`,
    );
  }
}

export const postgresService: StackService = {
  name: 'postgres',
  port,
  startTimeoutMs: 60_000,
  install,
  start,
  ready,
  provision,
};
