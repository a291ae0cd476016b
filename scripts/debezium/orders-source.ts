/**
 * A real Debezium source for the reference `orders` shape (WORKLOAD.md): the source table in
 * Postgres, a Postgres connector registered through Kafka Connect for that table alone (its own
 * topic prefix, replication slot and filtered publication), and the cleanup that gives the slot
 * back (our Postgres has at most 10).
 */
import pg from 'pg';
import { ConnectClient, type ConnectorConfig } from './connect-client.ts';

/** The reference `orders` columns, as the source table and every projection sink declare them. */
export const ordersColumnsDdl = `id bigint PRIMARY KEY, customer_id bigint, status text, amount numeric(12,2), currency char(3),
  shipping_address text, notes text, created_at timestamptz, updated_at timestamptz`;

export type ReplicaIdentity = 'default' | 'full';
export type DecimalHandling = 'precise' | 'string' | 'double';

/** The source database: CDCFLOW_SOURCE_DATABASE_URL, else DATABASE_URL's server with database `ecommerce`. */
export function sourceDatabaseUrl(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env['CDCFLOW_SOURCE_DATABASE_URL'];
  if (explicit !== undefined) return explicit;
  const url = new URL(env['DATABASE_URL'] ?? 'postgres://cdcflow:cdcflow@127.0.0.1:15432/cdcflow');
  url.pathname = '/ecommerce';
  return url.toString();
}

/** Creates the source database when it is missing (a fresh Docker Postgres has only `cdcflow`). */
export async function ensureSourceDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0)
      await client.query(`create database ${pg.escapeIdentifier(name)}`).catch((error: unknown) => {
        if (!/already exists/.test(String(error))) throw error;
      });
  } finally {
    await client.end();
  }
}

/** Creates `table` (dropping a leftover of the same name) with the orders columns. */
export async function createOrdersTable(url: string, table: string, replicaIdentity: ReplicaIdentity): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(table)}`);
    await client.query(`CREATE TABLE ${pg.escapeIdentifier(table)} (${ordersColumnsDdl})`);
    await client.query(
      `ALTER TABLE ${pg.escapeIdentifier(table)} REPLICA IDENTITY ${replicaIdentity === 'full' ? 'FULL' : 'DEFAULT'}`,
    );
  } finally {
    await client.end();
  }
}

export interface OrdersConnectorOptions {
  readonly connectUrl: string;
  readonly databaseUrl: string;
  /** The source table in schema `public`. */
  readonly table: string;
  /** Connector name, topic prefix, slot and publication derive from it; make it unique. */
  readonly name: string;
  /** @default false, as WORKLOAD.md */
  readonly schemasEnable?: boolean;
  /** @default 'string', as WORKLOAD.md (Debezium's own default is 'precise') */
  readonly decimalHandling?: DecimalHandling;
  /** Adds BEGIN/END records on `<prefix>.transaction` and a `transaction` block in every event. @default false */
  readonly transactionMetadata?: boolean;
  /** Partitions of the topic Connect creates. @default 1 */
  readonly partitions?: number;
  /** Debezium's snapshot.mode. @default 'initial' */
  readonly snapshotMode?: string;
  /** Any further connector settings (they win). */
  readonly extra?: ConnectorConfig;
}

/** What a registered connector produced: the names to read from and to clean up. */
export interface OrdersConnectorNames {
  readonly connector: string;
  readonly topicPrefix: string;
  /** `<prefix>.public.<table>` */
  readonly topic: string;
  readonly transactionTopic: string;
  readonly slot: string;
  readonly publication: string;
}

export function connectorNames(name: string, table: string): OrdersConnectorNames {
  const safe = name.replace(/[^a-zA-Z0-9_]/g, '_').toLowerCase();
  const topicPrefix = name.replace(/[^a-zA-Z0-9_.-]/g, '-');
  return {
    connector: name,
    topicPrefix,
    topic: `${topicPrefix}.public.${table}`,
    transactionTopic: `${topicPrefix}.transaction`,
    slot: safe.slice(0, 63),
    publication: `${safe}_pub`.slice(0, 63),
  };
}

export function ordersConnectorConfig(o: OrdersConnectorOptions): ConnectorConfig {
  const names = connectorNames(o.name, o.table);
  const db = new URL(o.databaseUrl);
  const schemas = String(o.schemasEnable ?? false);
  return {
    'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
    'tasks.max': '1',
    'database.hostname': db.hostname,
    'database.port': db.port || '5432',
    'database.user': decodeURIComponent(db.username),
    'database.password': decodeURIComponent(db.password),
    'database.dbname': decodeURIComponent(db.pathname.slice(1)),
    'plugin.name': 'pgoutput',
    'topic.prefix': names.topicPrefix,
    'table.include.list': `public.${o.table}`,
    'slot.name': names.slot,
    'publication.name': names.publication,
    'publication.autocreate.mode': 'filtered',
    'snapshot.mode': o.snapshotMode ?? 'initial',
    'decimal.handling.mode': o.decimalHandling ?? 'string',
    'provide.transaction.metadata': String(o.transactionMetadata ?? false),
    'key.converter': 'org.apache.kafka.connect.json.JsonConverter',
    'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable': schemas,
    'value.converter.schemas.enable': schemas,
    'topic.creation.default.partitions': String(o.partitions ?? 1),
    'topic.creation.default.replication.factor': '1',
    ...o.extra,
  };
}

/**
 * Registers the connector and waits until its task runs and its snapshot is over: the replication
 * slot is active, which Debezium's Postgres connector does only once it streams (after the snapshot).
 */
export async function startOrdersConnector(
  o: OrdersConnectorOptions,
  timeoutMs = 90_000,
): Promise<OrdersConnectorNames> {
  const names = connectorNames(o.name, o.table);
  const connect = new ConnectClient(o.connectUrl);
  await connect.put(names.connector, ordersConnectorConfig(o));
  await connect.waitRunning(names.connector, timeoutMs);
  await waitSlotStreaming(o.databaseUrl, names.slot, timeoutMs, () => connect.waitRunning(names.connector, 1));
  return names;
}

/** Waits until a walsender holds `slot`, i.e. the connector streams; `check` may throw to stop early (a FAILED task). */
export async function waitSlotStreaming(
  databaseUrl: string,
  slot: string,
  timeoutMs: number,
  check?: () => Promise<unknown>,
): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await client.query<{ active: boolean }>(
        'select active from pg_replication_slots where slot_name = $1',
        [slot],
      );
      if (rows[0]?.active === true) return;
      if (Date.now() > deadline)
        throw new Error(
          `replication slot ${slot} not streaming within ${timeoutMs} ms (is the snapshot still running? see the Connect log)`,
        );
      await check?.();
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  } finally {
    await client.end();
  }
}

/**
 * Deletes the connector, then drops its slot and publication. The task stops asynchronously, so
 * the slot may stay active a moment; after 20 s its walsender is terminated.
 */
export async function removeOrdersConnector(
  connectUrl: string,
  databaseUrl: string,
  names: OrdersConnectorNames,
): Promise<void> {
  await new ConnectClient(connectUrl).delete(names.connector);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const { rows } = await client.query<{ active: boolean; active_pid: number | null }>(
        'select active, active_pid from pg_replication_slots where slot_name = $1',
        [names.slot],
      );
      const slot = rows[0];
      if (slot === undefined) break;
      if (!slot.active) {
        await client.query('select pg_drop_replication_slot($1)', [names.slot]).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline && slot.active_pid !== null)
        await client.query('select pg_terminate_backend($1)', [slot.active_pid]);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    await client.query(`DROP PUBLICATION IF EXISTS ${pg.escapeIdentifier(names.publication)}`);
  } finally {
    await client.end();
  }
}
