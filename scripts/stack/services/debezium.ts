/**
 * Kafka Connect with Debezium's Postgres connector: connect-runtime + connect-json (matching the
 * stack's broker, 3.9.1) and io.debezium:debezium-connector-postgres 3.6.1.Final from Maven Central,
 * started with `java`, no Docker. Connectors are registered through the REST API on 127.0.0.1:18083.
 *
 * Distributed mode with one worker: connector configs, source offsets and statuses live in Kafka
 * topics (replication factor 1), so a restarted worker resumes its connectors from their last
 * committed offsets exactly as a production deployment does (the real-pipeline chaos test restarts it).
 * `scheduled.rebalance.max.delay.ms=0`: with one worker there is nobody to wait for, and the default
 * (5 min) would hold a restarted worker's connectors unassigned that long.
 *
 * Debezium runs from its own plugin folder (plugin.path), isolated from the worker's classpath as
 * in the Debezium images.
 *
 * Layout under ~/.cache/cdcflow:
 *   jars/kafka-connect-<version>/lib/                 the worker's classpath
 *   jars/debezium-postgres-<v>/lib/                   the connector plugin (plugin.path = jars/debezium-postgres-<v>)
 *   data/debezium/connect-distributed.properties      rewritten on every install
 *
 * `kafkaConnectWorker(layout)` builds a worker on another port, group and data folder (tests that
 * kill and restart a worker use their own; the shared one carries other tests' connectors).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { stackEndpoints, stackPorts } from '../endpoints.ts';
import { resolveClasspath, type MavenArtifact } from '../maven.ts';
import { stackPaths } from '../paths.ts';
import { run, startDaemon } from '../process.ts';
import type { StackService } from '../service.ts';

const name = 'debezium';
export const connectVersion = process.env['CDCFLOW_CONNECT_VERSION'] ?? '3.9.1';
export const debeziumVersion = process.env['CDCFLOW_DEBEZIUM_VERSION'] ?? '3.6.1.Final';

/** Where one Connect worker listens, which group and topics it uses, where it keeps its files. */
export interface ConnectWorkerLayout {
  /** Names its pid file and log. @default 'debezium' */
  readonly name?: string;
  /** @default 18083 */
  readonly restPort?: number;
  /** @default the stack's broker */
  readonly brokers?: string;
  /** Group id; the internal topics are `<group>-configs`, `-offsets`, `-status`. @default 'cdcflow-connect' */
  readonly groupId?: string;
  /** @default ~/.cache/cdcflow/data/debezium */
  readonly dataDir?: string;
}

/** The source database Debezium reads (created by the postgres service too; ensured here). */
export const debeziumSourceDatabase = 'ecommerce';

const pluginRoot = stackPaths.jars(`debezium-postgres-${debeziumVersion}`);

const workerArtifacts: MavenArtifact[] = [
  { groupId: 'org.apache.kafka', artifactId: 'connect-runtime', version: connectVersion },
  { groupId: 'org.apache.kafka', artifactId: 'connect-json', version: connectVersion },
  // The binding Kafka 3.9's own distribution ships; connect-runtime names none.
  { groupId: 'org.slf4j', artifactId: 'slf4j-reload4j', version: '1.7.36' },
  { groupId: 'ch.qos.reload4j', artifactId: 'reload4j', version: '1.2.25' },
];

const pluginArtifacts: MavenArtifact[] = [
  // connect-api and the Kafka clients come from the worker (they are `provided` in Debezium's pom).
  {
    groupId: 'io.debezium',
    artifactId: 'debezium-connector-postgres',
    version: debeziumVersion,
    // Debezium 3.6 builds against Kafka 4.3; Connect loads org.apache.kafka.* from the worker anyway.
    exclusions: ['org.apache.kafka:connect-api', 'org.apache.kafka:kafka-clients'],
  },
];

function workerProperties(brokers: string, groupId: string, restPort: number): string {
  return `# written by scripts/stack/services/debezium.ts on every install
bootstrap.servers=${brokers}
group.id=${groupId}
config.storage.topic=${groupId}-configs
offset.storage.topic=${groupId}-offsets
status.storage.topic=${groupId}-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
offset.storage.partitions=5
status.storage.replication.factor=1
status.storage.partitions=1
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
listeners=http://127.0.0.1:${restPort}
rest.advertised.host.name=127.0.0.1
rest.advertised.port=${restPort}
plugin.path=${pluginRoot}
# Every plugin ships ServiceLoader manifests: no reflective scan, a faster start.
plugin.discovery=service_load
# Source offsets (Debezium's LSN) are committed every second, so a restart re-sends at most ~1 s.
offset.flush.interval.ms=1000
scheduled.rebalance.max.delay.ms=0
session.timeout.ms=10000
heartbeat.interval.ms=3000
topic.creation.enable=true
`;
}

function log4jProperties(): string {
  return `log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
log4j.logger.org.reflections=ERROR
log4j.logger.org.eclipse.jetty=WARN
`;
}

/** Heap sized for one or a few connectors on a shared 2-core box; C1 only to cut start-up CPU. */
function jvmArgs(lib: string, propsFile: string, logConfigFile: string): string[] {
  return [
    '-Xms128m',
    '-Xmx512m',
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    '-Djava.net.preferIPv4Stack=true',
    `-Dlog4j.configuration=file:${logConfigFile}`,
    '-cp',
    join(lib, '*'),
    'org.apache.kafka.connect.cli.ConnectDistributed',
    propsFile,
  ];
}

async function checkJava(): Promise<void> {
  const output = await run('java', ['-version']).catch((error: unknown) => {
    throw new Error(`no usable \`java\` on PATH (Debezium ${debeziumVersion} needs Java 17+): ${String(error)}`);
  });
  const major = Number(/version "(?:1\.)?(\d+)/.exec(output)?.[1]);
  if (!(major >= 17)) throw new Error(`Debezium ${debeziumVersion} needs Java 17+, \`java -version\` says:\n${output}`);
}

const workerClasspath = (): Promise<string> => resolveClasspath(`kafka-connect-${connectVersion}`, workerArtifacts);
// Connect treats every folder under plugin.path as one isolated plugin: `debezium-postgres-<v>/lib`.
const pluginClasspath = (): Promise<string> =>
  resolveClasspath(`debezium-postgres-${debeziumVersion}`, pluginArtifacts);

interface ConnectorPlugin {
  readonly class: string;
}

/** True when the worker's REST API lists Debezium's Postgres connector and has joined its group. */
async function ready(base: string): Promise<boolean> {
  try {
    const plugins = await fetch(`${base}/connector-plugins`, { signal: AbortSignal.timeout(2000) });
    if (!plugins.ok) return false;
    const list = (await plugins.json()) as ConnectorPlugin[];
    if (!list.some((p) => p.class === 'io.debezium.connector.postgresql.PostgresConnector')) return false;
    // /connectors answers 200 only once the worker has joined the group and read the config topic.
    const connectors = await fetch(`${base}/connectors`, { signal: AbortSignal.timeout(2000) });
    await connectors.arrayBuffer();
    return connectors.ok;
  } catch {
    return false;
  }
}

async function superuserQuery(database: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: stackPorts.postgres,
    user: 'postgres',
    database,
    connectionTimeoutMillis: 2000,
  });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * What the connector needs in Postgres: the source database, owned by `cdcflow` (Debezium creates
 * filtered publications, which takes ownership of the tables), and REPLICATION on that role.
 * wal_level=logical is the postgres service's own setting. Skipped (with a line in the log) when the
 * stack's Postgres is not ours to administer, e.g. a Docker container without the `postgres` role.
 */
async function provision(): Promise<void> {
  try {
    const role = await superuserQuery('postgres', "select rolreplication from pg_roles where rolname = 'cdcflow'");
    if (role.rowCount === 0)
      await superuserQuery('postgres', "create role cdcflow login replication password 'cdcflow'");
    else if ((role.rows[0] as { rolreplication: boolean }).rolreplication !== true)
      await superuserQuery('postgres', 'alter role cdcflow replication');
    const db = await superuserQuery(
      'postgres',
      `select 1 from pg_database where datname = '${debeziumSourceDatabase}'`,
    );
    if (db.rowCount === 0) await superuserQuery('postgres', `create database ${debeziumSourceDatabase} owner cdcflow`);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    if (!/role "postgres" does not exist|password authentication/.test(why)) throw error;
  }
}

/**
 * A Connect worker service for `layout`; `debeziumService` is the stack's own (REST 18083, group
 * cdcflow-connect). A test that must kill and restart a worker runs one of its own with this
 * (test/support/debezium/dedicated-connect.ts), never the shared one.
 */
export function kafkaConnectWorker(layout: ConnectWorkerLayout = {}): StackService {
  const workerName = layout.name ?? name;
  const restPort = layout.restPort ?? stackPorts.kafkaConnect;
  const dataDir = layout.dataDir ?? stackPaths.data(name);
  const propsFile = join(dataDir, 'connect-distributed.properties');
  const logConfigFile = join(dataDir, 'connect-log4j.properties');
  return {
    name: workerName,
    port: restPort,
    // Plugin loading plus group join on a 2-core box that may be starting Kafka at the same time.
    startTimeoutMs: 180_000,
    dependsOn: ['kafka', 'postgres'],

    async install() {
      await checkJava();
      await Promise.all([workerClasspath(), pluginClasspath()]);
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(
        propsFile,
        workerProperties(layout.brokers ?? stackEndpoints.kafkaBrokers, layout.groupId ?? 'cdcflow-connect', restPort),
      );
      writeFileSync(logConfigFile, log4jProperties());
    },

    async start() {
      const lib = await workerClasspath();
      startDaemon({ service: workerName, command: 'java', args: jvmArgs(lib, propsFile, logConfigFile), cwd: dataDir });
    },

    ready: () => ready(`http://127.0.0.1:${restPort}`),
    provision,
  };
}

export const debeziumService: StackService = kafkaConnectWorker();
