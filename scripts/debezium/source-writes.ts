/**
 * SQL driven into a real source table, shaped to break naive CDC ordering: concurrent
 * transactions that interleave (one begins first and commits last) and TOASTed text columns.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';

/** Large enough (and incompressible) that Postgres stores it out of line (TOAST). */
export function bigText(tag: string): string {
  return `${tag}:${randomBytes(3_000).toString('hex')}`;
}

/** `id int pk, status text, amount numeric(12,2), notes text` with `ids` rows, REPLICA IDENTITY DEFAULT. */
export async function createToastTable(client: pg.Client, table: string, ids: number): Promise<void> {
  await client.query(
    `CREATE TABLE ${table} (id int PRIMARY KEY, status text NOT NULL, amount numeric(12,2), notes text)`,
  );
  await client.query(`ALTER TABLE ${table} REPLICA IDENTITY DEFAULT`);
  for (let id = 1; id <= ids; id++) {
    await client.query(`INSERT INTO ${table} VALUES ($1, 'new', $2, $3)`, [
      id,
      (id * 1.25).toFixed(2),
      bigText(`n${id}`),
    ]);
  }
}

/**
 * Until `stop.now`: session `a` begins a transaction and changes rows, session `b` runs whole
 * transactions on other rows meanwhile, then `a` changes a third row and commits — so `a`'s changes carry lower change
 * LSNs than `b`'s but commit after them. Touches only ids 1..`ids` except 3, 4 and 5 (left for the
 * TOAST, key-change and delete steps). Returns how many rounds ran.
 */
export async function interleavedWrites(
  a: pg.Client,
  b: pg.Client,
  table: string,
  options: {
    readonly ids: number;
    readonly stop: { now: boolean };
    readonly maxRounds?: number;
    readonly holdMs?: number;
  },
): Promise<number> {
  // b and a's last change cycle through ids 1..`hot`; a's first change takes a fresh id each round
  // (from hot+1 on), so a change straddling the snapshot point is that row's last.
  const hot = Math.min(options.ids, 40);
  const pick = (n: number): number => {
    const id = 1 + ((n * 7919) % hot);
    return id >= 3 && id <= 5 ? id + 3 : id;
  };
  let round = 0;
  const maxRounds = Math.min(options.maxRounds ?? 10_000, options.ids > hot ? options.ids - hot : 10_000);
  while (!options.stop.now && round < maxRounds) {
    const first = options.ids > hot ? hot + 1 + round : pick(round * 3);
    let second = pick(round * 3 + 1);
    // b must not wait for a row a holds: that would deadlock this one-client-each loop.
    for (let k = 2; second === first; k++) second = pick(round * 3 + k);
    let third = pick(round * 3 + 2);
    for (let k = 3; third === first || third === second; k++) third = pick(round * 3 + k);
    await a.query('BEGIN');
    await a.query(`UPDATE ${table} SET status = $2, amount = amount + 1 WHERE id = $1`, [first, `a${round}`]);
    await b.query('BEGIN');
    await b.query(`UPDATE ${table} SET status = $2, amount = amount - 1 WHERE id = $1`, [second, `b${round}`]);
    if (round % 5 === 0) await b.query(`UPDATE ${table} SET notes = $2 WHERE id = $1`, [second, bigText(`b${round}`)]);
    await b.query('COMMIT');
    // Holding a's transaction open makes it likelier to straddle the connector's snapshot point.
    if ((options.holdMs ?? 0) > 0) await new Promise((r) => setTimeout(r, options.holdMs));
    // A different row: a change of `first` before the snapshot point must not be rescued by a later one.
    await a.query(`UPDATE ${table} SET status = $2 WHERE id = $1`, [third, `a${round}-2`]);
    await a.query('COMMIT');
    round += 1;
  }
  return round;
}

/** The source table as the sink should hold it, ordered by id. */
export async function sourceRows(client: pg.Client, table: string): Promise<Record<string, unknown>[]> {
  return (
    await client.query<Record<string, unknown>>(
      `SELECT id, status, amount::text AS amount, notes FROM ${table} ORDER BY id`,
    )
  ).rows;
}
