/**
 * The files a single-node KRaft Kafka needs, as pure functions of where things live, so they can be
 * read (and unit-tested) without a broker. kafka.ts writes them on every install, so a change here
 * reaches the next `up` without deleting any data.
 */
import { randomBytes } from 'node:crypto';

export interface KafkaLayout {
  /** Broker and controller data (meta.properties, the metadata log, topic partitions). */
  readonly logDir: string;
  readonly clientPort: number;
  readonly controllerPort: number;
  /**
   * More client listeners beside PLAINTEXT on `clientPort` (which stays the inter-broker one and
   * what readiness checks use): a test broker with TLS and SASL (test/support/dedicated-kafka.ts).
   */
  readonly extraListeners?: readonly { readonly name: 'SSL' | 'SASL_PLAINTEXT' | 'SASL_SSL'; readonly port: number }[];
  /** Settings added last (TLS key stores, SASL mechanisms). */
  readonly extraSettings?: Readonly<Record<string, string>>;
}

/** The major version decides the logging stack: reload4j (log4j 1 API) up to 3.x, log4j2 from 4.0. */
export function usesLog4j2(version: string): boolean {
  return Number(version.split('.')[0]) >= 4;
}

/** Single node, broker and controller in one JVM, loopback only, sized for a 2-core dev box. */
export function serverProperties(layout: KafkaLayout): string {
  const { logDir, clientPort, controllerPort } = layout;
  const extra = layout.extraListeners ?? [];
  const extraListeners = extra.map((l) => `,${l.name}://127.0.0.1:${l.port}`).join('');
  const extraProtocols = extra.map((l) => `,${l.name}:${l.name}`).join('');
  const settings: Record<string, string | number | boolean> = {
    // KRaft combined mode: one process is the whole cluster.
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${clientPort},CONTROLLER://127.0.0.1:${controllerPort}${extraListeners}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${clientPort}${extraListeners}`,
    'listener.security.protocol.map': `PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT${extraProtocols}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'log.dirs': logDir,
    // One broker: every internal topic has one replica, and transactions need no more in-sync ones.
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 10,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 10,
    'min.insync.replicas': 1,
    'default.replication.factor': 1,
    // Tests create a group per run: no 3 s wait for more members, and short session timeouts allowed.
    'group.initial.rebalance.delay.ms': 0,
    'group.min.session.timeout.ms': 1000,
    'num.partitions': 1,
    'auto.create.topics.enable': true,
    'delete.topic.enable': true,
    // Small on disk: 64 MiB segments, kept a day or 1 GiB per partition, whichever comes first.
    'log.segment.bytes': 64 * 1024 * 1024,
    'log.retention.hours': 24,
    'log.retention.bytes': 1024 * 1024 * 1024,
    'log.retention.check.interval.ms': 60_000,
    // The compactor's 128 MiB default buffer would take a quarter of a 512 MiB heap.
    'log.cleaner.dedupe.buffer.size': 16 * 1024 * 1024,
    'log.cleaner.threads': 1,
    'num.network.threads': 2,
    'num.io.threads': 4,
    'num.recovery.threads.per.data.dir': 1,
    'background.threads': 4,
    ...layout.extraSettings,
  };
  const lines = Object.entries(settings).map(([key, value]) => `${key}=${String(value)}`);
  return `# Written by scripts/stack/services/kafka.ts on every install; edit kafka-config.ts instead.\n${lines.join('\n')}\n`;
}

// Kafka logs to stdout, which startDaemon appends to ~/.cache/cdcflow/logs/kafka.log. Per-partition
// chatter (segment rolls, log loading, every topic's creation, coordinator partition loads) is turned
// down to warnings; rebalances, transactions and start-up stay at INFO.
const quietLoggers = [
  'kafka.log',
  'org.apache.kafka.storage.internals.log',
  'state.change.logger',
  'kafka.cluster.Partition',
  'org.apache.kafka.controller.ReplicationControlManager',
  'kafka.coordinator.group.GroupMetadataManager',
  'kafka.coordinator.transaction.TransactionStateManager',
  'kafka.server.ReplicaFetcherManager',
  'kafka.server.ReplicaAlterLogDirsManager',
  'org.apache.kafka.clients',
  'org.apache.kafka.common.metrics',
  'org.apache.kafka.common.utils.AppInfoParser',
];

/** log4j 1.x (reload4j) configuration, for Kafka 3.x: `-Dlog4j.configuration=file:<path>`. */
export function log4jProperties(): string {
  const quiet = quietLoggers.map((name) => `log4j.logger.${name}=WARN`);
  return [
    'log4j.rootLogger=INFO, stdout',
    'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
    'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
    ...quiet,
    '',
  ].join('\n');
}

/** log4j2 configuration, for Kafka 4.x: `-Dlog4j2.configurationFile=<path>`. */
export function log4j2Properties(): string {
  const quiet = quietLoggers.flatMap((name, i) => [`logger.q${i}.name=${name}`, `logger.q${i}.level=WARN`]);
  return [
    'appender.stdout.type=Console',
    'appender.stdout.name=STDOUT',
    'appender.stdout.layout.type=PatternLayout',
    'appender.stdout.layout.pattern=[%d] %p %m (%c)%n',
    'rootLogger.level=INFO',
    'rootLogger.appenderRef.stdout.ref=STDOUT',
    ...quiet,
    '',
  ].join('\n');
}

/**
 * A cluster id as `kafka-storage random-uuid` prints it: 16 random bytes, base64url without padding,
 * never starting with '-' (the tool's command line would read that as an option). Saves a JVM start.
 */
export function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}
