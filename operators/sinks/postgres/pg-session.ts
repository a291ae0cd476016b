/**
 * The only database surface the Postgres sink uses: one session that runs SQL with positional
 * parameters. `pg` sits behind it, so a faster client (or a fake in unit tests) can replace it.
 */
import pg from 'pg';
import { CdcflowError } from '../../../state/errors.ts';

export interface PgResult<R> {
  readonly rows: R[];
  readonly rowCount: number;
}

/** One connection. Statements run in order; a session in a failed transaction needs ROLLBACK. */
export interface PgSession {
  query<R extends object = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<PgResult<R>>;
  close(): Promise<void>;
  /**
   * True once the connection dropped: no statement on this session can succeed again, so a retry
   * needs a new session (and whatever its open transaction held is gone). @default never
   */
  readonly broken?: boolean;
}

/** Opens a new session. The sink opens two: a writer (the open transaction) and a control session (commits). */
export type PgConnect = () => Promise<PgSession>;

/** Thrown for a failed statement or connection; `sqlState` is Postgres's error code when it sent one. */
export class PostgresSinkError extends CdcflowError {
  constructor(
    message: string,
    readonly sqlState: string | undefined,
    options: { domain?: 'user' | 'external' | 'internal'; retriable?: boolean; cause?: unknown } = {},
  ) {
    super(message, {
      domain: options.domain ?? 'external',
      retriable: options.retriable ?? true,
      cause: options.cause,
    });
  }
}

/** SQLSTATE of a `pg` error (`42704` undefined object, `55000` object in use, ...), if any. */
export function sqlStateOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * `pg.Client` per session. `connectionString` defaults to `DATABASE_URL`. A statement that gets no
 * answer within `queryTimeoutMs` fails and breaks the session (its socket is destroyed): after a
 * silent network drop nothing else would ever end the wait. TCP keep-alive finds dead idle sessions.
 */
export function pgConnect(
  connectionString: string | undefined = process.env['DATABASE_URL'],
  options: { readonly queryTimeoutMs?: number } = {},
): PgConnect {
  if (connectionString === undefined) {
    throw new PostgresSinkError(
      'postgresSink needs a connection: pass connectionString or connect, or set DATABASE_URL',
      undefined,
      { domain: 'user', retriable: false },
    );
  }
  return async () => {
    const client = new pg.Client({
      connectionString,
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      ...(options.queryTimeoutMs === undefined ? {} : { query_timeout: options.queryTimeoutMs }),
    });
    let broken = false;
    // A dropped connection surfaces as a failed query; without a listener it would crash the process.
    client.on('error', () => (broken = true));
    client.on('end', () => (broken = true));
    await client.connect();
    return {
      query: async <R extends object>(sql: string, params: readonly unknown[] = []) => {
        try {
          const result = await client.query<R>(sql, params as unknown[]);
          return { rows: result.rows, rowCount: result.rowCount ?? 0 };
        } catch (error) {
          // pg leaves the connection open after its query timeout, with the statement's answer
          // still due: nothing sent on it later could be matched to its reply. Drop it.
          if (error instanceof Error && error.message === 'Query read timeout') {
            broken = true;
            (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
          }
          throw error;
        }
      },
      close: () => client.end().catch(() => undefined),
      get broken() {
        return broken;
      },
    };
  };
}
