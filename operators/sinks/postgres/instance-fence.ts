/**
 * The sink instance's fence in Postgres: a session-level advisory lock on the control session,
 * keyed by the instance name (`<job>:<sink>:<subtask>`). A second instance of the same job
 * (another checkpoint root, another host) cannot take it and fails at start naming the holder
 * (`application_name` says `cdcflow <host> pid <pid>`). The lock lives exactly as long as the
 * session: a killed job's lock goes with its connection, so a restart never waits for a lease to
 * expire.
 */
import { hostname } from 'node:os';
import { PostgresSinkError, type PgSession } from './pg-session.ts';

/** 'cdcf' — the first key of every cdcflow advisory lock. */
const FENCE_CLASS = 0x63646366;

export function applicationName(): string {
  return `cdcflow ${hostname()} pid ${process.pid}`.slice(0, 63);
}

/** Takes the fence on `control`; throws naming the holder if another session has it. */
export async function takeInstanceFence(control: PgSession, instance: string): Promise<void> {
  await control.query(`SET application_name = '${applicationName().replace(/'/g, "''")}'`);
  const { rows } = await control.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::int, hashtext($2)) AS ok', [
    FENCE_CLASS,
    instance,
  ]);
  if (rows[0]?.ok === true) return;
  const holder = await control.query<{
    pid: number;
    application_name: string;
    client_addr: string | null;
    backend_start: string;
  }>(
    `SELECT a.pid, a.application_name, host(a.client_addr) AS client_addr, a.backend_start::text AS backend_start
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = $1 AND l.objid::bigint = (hashtext($2)::bigint & 4294967295) AND l.objsubid = 2`,
    [FENCE_CLASS, instance],
  );
  const h = holder.rows[0];
  const who =
    h === undefined
      ? 'another session (gone meanwhile)'
      : `'${h.application_name}' (backend pid ${h.pid}${h.client_addr === null ? '' : ` from ${h.client_addr}`}, connected since ${h.backend_start})`;
  // Our own process's earlier attempt still closing its session: that resolves itself, so retry.
  const ours = h?.application_name === applicationName();
  throw new PostgresSinkError(
    `sink instance '${instance}' is held by ${who}: another instance of this job writes to this database. ` +
      "Stop it first; two instances would roll back each other's prepared transactions.",
    '55P03',
    { domain: ours ? 'external' : 'user', retriable: ours },
  );
}
