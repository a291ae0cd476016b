/**
 * A real Debezium Postgres connector on the shared Kafka Connect worker (STATUS-debezium.md), for
 * tests that must read what the connector really emits: register one on a table with unique
 * topic/slot/publication names, wait until it runs, and remove it with its slot and publication.
 */
import pg from 'pg';
import { ConnectClient } from './connect-client.ts';

export const KAFKA_CONNECT_URL = process.env['KAFKA_CONNECT_URL'] ?? 'http://127.0.0.1:18083';
/** The database the shared connector worker captures from (the shared Postgres, database `ecommerce`). */
export const SOURCE_DATABASE_URL =
  process.env['DEBEZIUM_SOURCE_URL'] ?? 'postgres://cdcflow:cdcflow@127.0.0.1:15432/ecommerce';

export interface ConnectorHandle {
  readonly name: string;
  readonly topic: string;
  readonly slot: string;
  readonly publication: string;
  remove(): Promise<void>;
}

const connect = new ConnectClient(KAFKA_CONNECT_URL);

export function connectAvailable(): Promise<boolean> {
  return connect.available();
}

/** A Debezium Postgres connector's config for `public.<table>` of the shared source database (pgoutput, one task, one-partition topics). */
export function tableConnectorConfig(o: {
  topicPrefix: string;
  table: string;
  slot: string;
  publication: string;
  extra?: Readonly<Record<string, string>>;
}): Record<string, string> {
  return {
    'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
    'tasks.max': '1',
    'database.hostname': '127.0.0.1',
    'database.port': '15432',
    'database.user': 'cdcflow',
    'database.password': 'cdcflow',
    'database.dbname': 'ecommerce',
    'plugin.name': 'pgoutput',
    'topic.prefix': o.topicPrefix,
    'table.include.list': `public.${o.table}`,
    'slot.name': o.slot,
    'publication.name': o.publication,
    'publication.autocreate.mode': 'filtered',
    'topic.creation.default.partitions': '1',
    'topic.creation.default.replication.factor': '1',
    ...o.extra,
  };
}

/** Registers a connector on `public.<table>` (names derived from `name`, which must be unique) and waits until its task runs. */
export async function startConnector(
  name: string,
  table: string,
  extra: Readonly<Record<string, string>> = {},
): Promise<ConnectorHandle> {
  const id = name.replace(/[^a-z0-9]/g, '_');
  const slot = `s_${id}`;
  const publication = `p_${id}`;
  const config = tableConnectorConfig({
    topicPrefix: name,
    table,
    slot,
    publication,
    extra: { 'decimal.handling.mode': 'string', ...extra },
  });
  await connect.put(name, config);
  const handle: ConnectorHandle = {
    name,
    topic: `${name}.public.${table}`,
    slot,
    publication,
    remove: () => removeConnector(name, slot, publication),
  };
  try {
    await connect.waitRunning(name, 60_000);
  } catch (error) {
    await handle.remove();
    throw error;
  }
  return handle;
}

async function removeConnector(name: string, slot: string, publication: string): Promise<void> {
  await connect.delete(name).catch(() => undefined);
  const client = new pg.Client({ connectionString: SOURCE_DATABASE_URL });
  await client.connect();
  try {
    // The task lets go of the slot a moment after the connector is deleted.
    for (let attempt = 0; attempt < 80; attempt++) {
      const { rows } = await client.query<{ active: boolean }>(
        'SELECT active FROM pg_replication_slots WHERE slot_name = $1',
        [slot],
      );
      if (rows.length === 0) break;
      if (rows[0]?.active !== true) {
        await client.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    await client.query(`DROP PUBLICATION IF EXISTS ${publication}`);
  } finally {
    await client.end();
  }
}

/**
 * Waits until the connector's replication slot exists (its snapshot point is fixed). A load that
 * must straddle the snapshot point has to run until then: the slot becomes consistent at the
 * first moment no transaction that started too early is still running, which may take a while.
 */
export async function waitForSlot(slot: string, timeoutMs = 90_000): Promise<void> {
  const client = new pg.Client({ connectionString: SOURCE_DATABASE_URL });
  await client.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await client.query(
        'SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND confirmed_flush_lsn IS NOT NULL',
        [slot],
      );
      if (rows.length > 0) return;
      if (Date.now() > deadline) throw new Error(`replication slot ${slot} not created within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await client.end();
  }
}
