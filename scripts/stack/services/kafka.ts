/**
 * A real Apache Kafka broker in KRaft combined mode (broker + controller in one JVM), built from
 * Maven Central jars and started with `java`, no Docker and no tarball.
 *
 * Version: 3.9.1 by default, the last line before Kafka 4.0 removed old protocol versions (KIP-896)
 * that kafkajs 2.2.4, the project's client, might need. 4.4.0 also passed the smoke tests and an admin
 * API sweep with kafkajs 2.2.4; set CDCFLOW_KAFKA_VERSION=4.4.0 to run it. Each version keeps its own
 * data folder, so switching never feeds one version's metadata log to another.
 *
 * Layout under ~/.cache/cdcflow:
 *   jars/kafka-<version>/lib/        the broker's classpath (resolveClasspath)
 *   data/kafka/server.properties     rewritten on every install (see kafka-config.ts)
 *   data/kafka/log4j*.properties     logging to stdout, i.e. logs/kafka.log
 *   data/kafka/kraft-<version>/      meta.properties, __cluster_metadata, topic partitions
 *
 * `kafkaBroker(layout)` builds the same service for other ports and another data folder, so a test
 * can run (and SIGKILL, and restart) a broker of its own without touching the shared one.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { stackEndpoints, stackPorts } from '../endpoints.ts';
import { StackError } from '../errors.ts';
import { resolveClasspath, type MavenArtifact } from '../maven.ts';
import { stackPaths } from '../paths.ts';
import { run, startDaemon } from '../process.ts';
import type { StackService } from '../service.ts';
import {
  log4j2Properties,
  log4jProperties,
  randomClusterId,
  serverProperties,
  usesLog4j2,
  type KafkaLayout,
} from './kafka-config.ts';

export const kafkaVersion = process.env['CDCFLOW_KAFKA_VERSION'] ?? '3.9.1';

const log4j2 = usesLog4j2(kafkaVersion);

/** Where one broker listens and keeps its files. */
export interface KafkaBrokerLayout {
  /** Names its pid file and log (`~/.cache/cdcflow/{run,logs}/<name>.*`). @default 'kafka' */
  readonly name?: string;
  /** @default 19092 */
  readonly clientPort?: number;
  /** @default 19093 */
  readonly controllerPort?: number;
  /** Holds server.properties, the log4j file and `kraft-<version>/`. @default ~/.cache/cdcflow/data/kafka */
  readonly dataDir?: string;
  /** JVM heap of the running broker. @default '512m' */
  readonly heap?: string;
  /** TLS/SASL listeners and their settings (see kafka-config.ts); the PLAINTEXT one stays. */
  readonly extraListeners?: KafkaLayoutExtras['extraListeners'];
  readonly extraSettings?: KafkaLayoutExtras['extraSettings'];
}

type KafkaLayoutExtras = Pick<KafkaLayout, 'extraListeners' | 'extraSettings'>;

/**
 * Runs one of Kafka's command-line tools (`kafka.admin.ConfigCommand`, …) on the broker's
 * classpath, e.g. to create a SCRAM user: what bin/kafka-configs.sh does.
 */
export async function runKafkaTool(mainClass: string, args: readonly string[]): Promise<void> {
  const lib = await classpath();
  await run('java', ['-Xmx128m', '-cp', join(lib, '*'), mainClass, ...args]);
}

/** The broker plus the slf4j binding its version logs through (the kafka_2.13 pom names none). */
function artifacts(version: string): MavenArtifact[] {
  const kafka: MavenArtifact = { groupId: 'org.apache.kafka', artifactId: 'kafka_2.13', version };
  if (!log4j2) {
    // The versions Kafka 3.9's own distribution ships (slf4j-reload4j alone would pull reload4j 1.2.19).
    return [
      kafka,
      { groupId: 'org.slf4j', artifactId: 'slf4j-reload4j', version: '1.7.36' },
      { groupId: 'ch.qos.reload4j', artifactId: 'reload4j', version: '1.2.25' },
    ];
  }
  // 4.x brings log4j2 itself but no slf4j 1.7 binding for it (tried with 4.4.0).
  return [kafka, { groupId: 'org.apache.logging.log4j', artifactId: 'log4j-slf4j-impl', version: '2.24.3' }];
}

/** What bin/kafka-run-class.sh passes, with a fixed heap for a shared 2-core box. */
function jvmArgs(lib: string, heap: string, logConfigFile: string): string[] {
  return [
    `-Xms${heap}`,
    `-Xmx${heap}`,
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-XX:InitiatingHeapOccupancyPercent=35',
    '-XX:+ExplicitGCInvokesConcurrent',
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    '-Djava.net.preferIPv4Stack=true',
    log4j2 ? `-Dlog4j2.configurationFile=${logConfigFile}` : `-Dlog4j.configuration=file:${logConfigFile}`,
    '-cp',
    join(lib, '*'),
  ];
}

async function classpath(): Promise<string> {
  return resolveClasspath(`kafka-${kafkaVersion}`, artifacts(kafkaVersion));
}

function client(brokers: string, retries: number): Kafka {
  return new Kafka({
    clientId: 'cdcflow-stack',
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 3000,
    retry: { retries },
  });
}

/** True when the broker answers a metadata request and names a live broker and a controller. */
async function answers(brokers: string): Promise<boolean> {
  const admin = client(brokers, 0).admin({ retry: { retries: 0 } });
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** A Kafka broker service for `layout`; `kafkaService` is the stack's own (19092, ~/.cache/cdcflow/data/kafka). */
export function kafkaBroker(layout: KafkaBrokerLayout = {}): StackService {
  const name = layout.name ?? 'kafka';
  const clientPort = layout.clientPort ?? stackPorts.kafka;
  const controllerPort = layout.controllerPort ?? stackPorts.kafkaController;
  const dataDir = layout.dataDir ?? stackPaths.data('kafka');
  const heap = layout.heap ?? '512m';
  const brokers = layout.clientPort === undefined ? stackEndpoints.kafkaBrokers : `127.0.0.1:${clientPort}`;
  const logDir = join(dataDir, `kraft-${kafkaVersion}`);
  const propsFile = join(dataDir, 'server.properties');
  const logConfigFile = join(dataDir, log4j2 ? 'log4j2.properties' : 'log4j.properties');

  /** Formats the KRaft storage once; a folder holding meta.properties is left as it is. */
  async function formatStorage(lib: string): Promise<void> {
    if (existsSync(join(logDir, 'meta.properties'))) return;
    await run('java', [
      ...jvmArgs(lib, '256m', logConfigFile),
      'kafka.tools.StorageTool',
      'format',
      '-t',
      randomClusterId(),
      '-c',
      propsFile,
    ]);
  }

  return {
    name,
    port: clientPort,
    // Cold JVM start plus metadata log replay on a 2-core box that starts other JVMs at the same time.
    startTimeoutMs: 120_000,

    async install() {
      const lib = await classpath();
      mkdirSync(logDir, { recursive: true });
      writeFileSync(
        propsFile,
        serverProperties({
          logDir,
          clientPort,
          controllerPort,
          ...(layout.extraListeners === undefined ? {} : { extraListeners: layout.extraListeners }),
          ...(layout.extraSettings === undefined ? {} : { extraSettings: layout.extraSettings }),
        }),
      );
      writeFileSync(logConfigFile, log4j2 ? log4j2Properties() : log4jProperties());
      await formatStorage(lib);
    },

    async start() {
      const lib = await classpath();
      startDaemon({
        service: name,
        command: 'java',
        args: [...jvmArgs(lib, heap, logConfigFile), 'kafka.Kafka', propsFile],
      });
    },

    ready: () => answers(brokers),

    // The group and transaction coordinators load their internal topics on first use, and until then
    // answer "coordinator not available" (kafkajs logs each retry as an error). Touch both once so the
    // first test or job finds them loaded; on a warm broker this takes a few milliseconds.
    async provision() {
      const kafka = client(brokers, 10);
      const admin = kafka.admin();
      const producer = kafka.producer({
        transactionalId: 'cdcflow-stack-warmup',
        idempotent: true,
        maxInFlightRequests: 1,
      });
      try {
        await admin.connect();
        await admin.describeGroups(['cdcflow-stack-warmup']);
        await producer.connect();
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        throw new StackError(
          name,
          `answers metadata requests but its coordinators did not load: ${why}`,
          clientPort,
          stackPaths.log(name),
        );
      } finally {
        await producer.disconnect().catch(() => undefined);
        await admin.disconnect().catch(() => undefined);
      }
    },
  };
}

export const kafkaService: StackService = kafkaBroker();
