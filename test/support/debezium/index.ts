/**
 * Real CDC for tests: a unique `orders` source table in the `ecommerce` database, a Debezium
 * Postgres connector on the stack's Kafka Connect for that table alone, the SQL workload that
 * writes to it, and a cleanup that deletes the connector, drops its slot and publication (our
 * Postgres has at most 10 slots), the table and the topics.
 *
 *   const source = await RealOrdersSource.create('my-test', { replicaIdentity: 'full' });
 *   try {
 *     await seedOrders(source.databaseUrl, source.table, 500);
 *     const load = source.workload({ seed: 1, maxChanges: 5000, maxDurationMs: 20_000 });
 *     await source.startConnector({ decimalHandling: 'string' }); // while writes run
 *     await load.done;
 *     // read source.topic ... compare with the table: runtime/reconcile
 *   } finally {
 *     await source.cleanup();
 *   }
 */
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import {
  connectorNames,
  createOrdersTable,
  ensureSourceDatabase,
  removeOrdersConnector,
  sourceDatabaseUrl,
  startOrdersConnector,
  type OrdersConnectorNames,
  type OrdersConnectorOptions,
  type ReplicaIdentity,
} from '../../../scripts/debezium/orders-source.ts';
import { SqlWorkload, type SqlWorkloadOptions } from '../../../scripts/debezium/sql-workload.ts';
import { testEndpoints, uniqueName } from '../endpoints.ts';

export { ConnectClient } from '../../../scripts/debezium/connect-client.ts';
export {
  seedOrders,
  SqlWorkload,
  type SqlWorkloadOptions,
  type SqlWorkloadReport,
} from '../../../scripts/debezium/sql-workload.ts';
export {
  ordersColumnsDdl,
  type DecimalHandling,
  type ReplicaIdentity,
} from '../../../scripts/debezium/orders-source.ts';

export interface RealOrdersSourceOptions {
  /** @default 'full' (WORKLOAD.md); 'default' is Postgres's own default, with TOAST placeholders */
  readonly replicaIdentity?: ReplicaIdentity;
  /** The Connect worker to register on. @default KAFKA_CONNECT_URL (the stack's, 18083) */
  readonly connectUrl?: string;
}

export type ConnectorSettings = Omit<OrdersConnectorOptions, 'connectUrl' | 'databaseUrl' | 'table' | 'name'>;

export class RealOrdersSource {
  private names: OrdersConnectorNames | undefined;

  private constructor(
    readonly table: string,
    readonly databaseUrl: string,
    readonly connectUrl: string,
    private readonly connectorName: string,
  ) {}

  /** Creates a fresh source table named after `label` (unique per call). */
  static async create(label: string, o: RealOrdersSourceOptions = {}): Promise<RealOrdersSource> {
    const databaseUrl = sourceDatabaseUrl();
    await ensureSourceDatabase(databaseUrl);
    const id = uniqueName(label).replace(/[^a-z0-9]/g, '_');
    const table = `src_${id}`.slice(0, 50);
    await createOrdersTable(databaseUrl, table, o.replicaIdentity ?? 'full');
    return new RealOrdersSource(
      table,
      databaseUrl,
      o.connectUrl ?? testEndpoints().kafkaConnectUrl,
      `cdcflow-test-${id.replace(/_/g, '-')}`,
    );
  }

  /** The topic the connector writes (`<prefix>.public.<table>`); known before the connector starts. */
  get topic(): string {
    return `${this.connectorName}.public.${this.table}`;
  }

  get connector(): OrdersConnectorNames | undefined {
    return this.names;
  }

  /** Registers the connector and waits until it streams (its snapshot done). */
  async startConnector(settings: ConnectorSettings = {}): Promise<OrdersConnectorNames> {
    this.names = await startOrdersConnector({
      ...settings,
      connectUrl: this.connectUrl,
      databaseUrl: this.databaseUrl,
      table: this.table,
      name: this.connectorName,
    });
    return this.names;
  }

  /** Starts the SQL workload on this table now. */
  workload(o: Omit<SqlWorkloadOptions, 'databaseUrl' | 'table'>): SqlWorkload {
    return SqlWorkload.start({ ...o, databaseUrl: this.databaseUrl, table: this.table });
  }

  async query<R extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<R[]> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    await client.connect();
    try {
      return (await client.query<R>(sql, values)).rows;
    } finally {
      await client.end();
    }
  }

  /** Deletes the connector, its slot and publication, the table and the topics it wrote. */
  async cleanup(): Promise<void> {
    const names = this.names ?? connectorNames(this.connectorName, this.table);
    await removeOrdersConnector(this.connectUrl, this.databaseUrl, names);
    await this.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(this.table)}`);
    const admin = new Kafka({
      clientId: 'debezium-cleanup',
      brokers: testEndpoints().kafkaBrokers.split(','),
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const topics = [names.topic, names.transactionTopic].filter((t) => existing.has(t));
      if (topics.length > 0) await admin.deleteTopics({ topics });
    } finally {
      await admin.disconnect();
    }
  }
}
