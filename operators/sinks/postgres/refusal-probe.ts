/**
 * Asks Postgres whether it would accept values the client-side checks are unsure of, in one round
 * trip per batch and outside the writer's transaction: each value is cast to its column's type
 * (`value::type`, the cast the sink's typed statements make) in a session-local function that
 * catches the refusal. Postgres 15 has no `pg_input_is_valid`; the function plays its part.
 *
 * Runs on the control session: a refusal there aborts nothing. If the function cannot be created
 * (no TEMP privilege), the probe says "unknown" and the write's own refusal path decides.
 */
import type { PgSession } from './pg-session.ts';
import type { CertainRefusal } from './value-checks.ts';

const FUNCTION = `CREATE OR REPLACE FUNCTION pg_temp.cdcflow_refusal(v text, t text) RETURNS text LANGUAGE plpgsql AS $fn$
BEGIN
  EXECUTE format('SELECT %L::%s', v, t);
  RETURN NULL;
EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
  RETURN SQLSTATE || ' ' || SQLERRM;
END
$fn$`;

const QUERY = `SELECT u.i::int AS i, r.refusal FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(v, t, i)
  CROSS JOIN LATERAL (SELECT pg_temp.cdcflow_refusal(u.v, u.t) AS refusal) r WHERE r.refusal IS NOT NULL`;

/** Accepted (type, text) pairs remembered, so recurring values (enum labels, odd formats) are asked once. */
const ACCEPTED_CACHE_LIMIT = 10_000;

export interface ProbeItem {
  readonly type: string;
  readonly text: string;
}

export class RefusalProbe {
  private readySession: PgSession | undefined;
  private unavailable = false;
  private readonly accepted = new Set<string>();

  constructor(private readonly log: (line: string) => void) {}

  /** The refusal of each item (undefined: accepted, or Postgres could not be asked). */
  async refusals(session: PgSession, items: readonly ProbeItem[]): Promise<(CertainRefusal | undefined)[]> {
    const result: (CertainRefusal | undefined)[] = items.map(() => undefined);
    const asked: number[] = [];
    for (let i = 0; i < items.length; i++) if (!this.accepted.has(cacheKey(items[i] as ProbeItem))) asked.push(i);
    if (asked.length === 0 || !(await this.ready(session))) return result;
    const { rows } = await session.query<{ i: number; refusal: string }>(QUERY, [
      asked.map((i) => (items[i] as ProbeItem).text),
      asked.map((i) => (items[i] as ProbeItem).type),
    ]);
    const refused = new Set<number>();
    for (const { i, refusal } of rows) {
      const at = asked[i - 1] as number;
      refused.add(at);
      result[at] = { sqlState: refusal.slice(0, 5), message: refusal.slice(6) };
    }
    if (this.accepted.size + asked.length > ACCEPTED_CACHE_LIMIT) this.accepted.clear();
    for (const at of asked) if (!refused.has(at)) this.accepted.add(cacheKey(items[at] as ProbeItem));
    return result;
  }

  /** Creates the function once per session (a reconnected control session needs it again). */
  private async ready(session: PgSession): Promise<boolean> {
    if (this.unavailable) return false;
    if (this.readySession === session) return true;
    try {
      await session.query(FUNCTION);
      this.readySession = session;
      return true;
    } catch (error) {
      this.unavailable = true;
      this.log(
        `cannot create the value probe (pg_temp.cdcflow_refusal): ${(error as Error).message}; values the table refuses are found by the write alone`,
      );
      return false;
    }
  }
}

function cacheKey(item: ProbeItem): string {
  return `${item.type}\u0000${item.text}`;
}
