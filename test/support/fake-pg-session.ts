import type { PgResult, PgSession } from '../../operators/sinks/postgres/pg-session.ts';

/**
 * A PgSession that records every statement and answers the Postgres sink's startup queries for a
 * table `(id bigint, status text)`; once `broken`, every query fails as a lost connection does.
 */
export class FakePgSession implements PgSession {
  broken = false;
  readonly statements: string[] = [];

  query<R extends object>(sql: string): Promise<PgResult<R>> {
    if (this.broken) return Promise.reject(new Error('Client has encountered a connection error and is not queryable'));
    this.statements.push(sql);
    let rows: object[] = [];
    if (sql.includes('pg_attribute'))
      rows = [
        { name: 'id', type: 'bigint' },
        { name: 'status', type: 'text' },
      ];
    if (sql.includes('max_prepared_transactions')) rows = [{ n: 64 }];
    if (sql.includes('pg_try_advisory_lock')) rows = [{ ok: true }];
    return Promise.resolve({ rows: rows as R[], rowCount: rows.length });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
