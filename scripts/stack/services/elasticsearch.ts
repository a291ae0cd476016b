/**
 * Elasticsearch 7.10.2 from Maven Central, no Docker: codelibs' elasticsearch-cluster-runner
 * embeds a real ES node (server jar + the OSS modules as classpath plugins) in one JVM.
 *
 * Version: 7.10.2 because it is the last Apache-2.0 release, and so the newest one whose server
 * and modules are published to Maven Central (7.11+ and 8.x ship only as Elastic's archives).
 * `@elastic/elasticsearch` 7.17 accepts a 7.10 server once it reports the `default` build
 * flavor (the client's product check), hence `-Des.distribution.flavor=default` below.
 * 8.x clients would refuse it: they need an `x-elastic-product` header 7.10 never sends.
 *
 * Layout under ~/.cache/cdcflow:
 *   jars/elasticsearch/lib/                 the runner and its dependencies
 *   jars/elasticsearch/launcher/classes/    our main class (see elasticsearch-launcher.ts)
 *   data/elasticsearch/cdcflow.yml          node settings, rewritten on every start
 *   data/elasticsearch/node_1/{data,logs}   the node's indices and its own log files
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stackEndpoints, stackPorts } from '../endpoints.ts';
import type { MavenArtifact } from '../maven.ts';
import { resolveClasspath } from '../maven.ts';
import { stackPaths } from '../paths.ts';
import { run, startDaemon } from '../process.ts';
import type { StackService } from '../service.ts';
import { ensureLauncher, launcherArgs, launcherClass } from './elasticsearch-launcher.ts';

const name = 'elasticsearch';
const transportPort = 19300;
const baseDir = stackPaths.data(name);
const settingsFile = join(baseDir, 'cdcflow.yml');

const artifacts: readonly MavenArtifact[] = [
  { groupId: 'org.codelibs', artifactId: 'elasticsearch-cluster-runner', version: '7.10.2.0' },
  // The runner pins log4j 2.11.1 (Log4Shell); the nearer declaration wins in Maven's resolution.
  { groupId: 'org.apache.logging.log4j', artifactId: 'log4j-api', version: '2.17.2' },
  { groupId: 'org.apache.logging.log4j', artifactId: 'log4j-core', version: '2.17.2' },
];

/**
 * Single node, loopback only (HTTP and transport). Disk watermarks are absolute free-space
 * figures instead of the default 85/90/95 % of the disk: a dev disk that is 95 % full but has
 * gigabytes left would otherwise make every index read-only mid-test. The real-memory circuit
 * breaker is off because it reads raw heap use, which under the serial collector (see jvmArgs)
 * includes garbage awaiting a full GC and would reject bulk requests spuriously.
 */
function nodeSettings(): string {
  return `${[
    'cluster.name: cdcflow',
    'node.name: cdcflow-1',
    'node.roles: [master, data, ingest]',
    'network.host: 127.0.0.1',
    `http.port: ${stackPorts.elasticsearch}`,
    `transport.port: ${transportPort}`,
    'discovery.type: single-node',
    'cluster.routing.allocation.disk.watermark.low: 2gb',
    'cluster.routing.allocation.disk.watermark.high: 1gb',
    'cluster.routing.allocation.disk.watermark.flood_stage: 500mb',
    'indices.breaker.total.use_real_memory: false',
  ].join('\n')}\n`;
}

/**
 * C1 only and the serial collector halve start-up on a busy 2-core box (measured 7-12 s against
 * 12-32 s with the JVM defaults); start-up is what tests wait on, and ES is not benchmarked.
 * CDCFLOW_ELASTICSEARCH_JAVA_OPTS is appended, so e.g. `-XX:TieredStopAtLevel=4 -XX:+UseG1GC`
 * restores peak throughput. The system properties mirror ES 7.10's own jvm.options (the runner
 * bypasses its launcher scripts). `-Des.distribution.flavor=default` is what the JS client's
 * product check looks for; `formatMsgNoLookups` backs up the log4j upgrade against Log4Shell.
 */
function jvmArgs(classes: string, lib: string): string[] {
  const extra = (process.env['CDCFLOW_ELASTICSEARCH_JAVA_OPTS'] ?? '').split(/\s+/).filter(Boolean);
  return [
    '-Xms512m',
    '-Xmx512m',
    '-Xss1m',
    '-XX:TieredStopAtLevel=1',
    '-XX:+UseSerialGC',
    '-XX:+ExitOnOutOfMemoryError',
    '-XX:-OmitStackTraceInFastThrow',
    '-Djava.awt.headless=true',
    '-Dfile.encoding=UTF-8',
    '-Djava.locale.providers=SPI,COMPAT',
    `-Djava.io.tmpdir=${join(baseDir, 'tmp')}`,
    '-Djna.nosys=true',
    '-Dio.netty.noUnsafe=true',
    '-Dio.netty.noKeySetOptimization=true',
    '-Dio.netty.recycler.maxCapacityPerThread=0',
    '-Dlog4j.shutdownHookEnabled=false',
    '-Dlog4j2.disable.jmx=true',
    '-Dlog4j2.formatMsgNoLookups=true',
    '-Des.distribution.flavor=default',
    '-Des.distribution.type=tar',
    ...extra,
    '-cp',
    `${classes}:${join(lib, '*')}`,
  ];
}

async function checkJava(): Promise<void> {
  const output = await run('java', ['-version']).catch((error: unknown) => {
    throw new Error(`no usable \`java\` on PATH (Elasticsearch 7.10 needs Java 11+; tested on 17): ${String(error)}`);
  });
  const major = Number(/version "(?:1\.)?(\d+)/.exec(output)?.[1]);
  if (!(major >= 11)) throw new Error(`Elasticsearch 7.10 needs Java 11+, \`java -version\` says:\n${output}`);
}

let installed: Promise<{ lib: string; classes: string }> | undefined;

/** Memoised per process: `up` calls install() and then start(), which needs the same paths. */
function install(): Promise<{ lib: string; classes: string }> {
  installed ??= installOnce().catch((error: unknown) => {
    installed = undefined;
    throw error;
  });
  return installed;
}

async function installOnce(): Promise<{ lib: string; classes: string }> {
  await checkJava();
  const lib = await resolveClasspath(name, artifacts);
  const classes = await ensureLauncher(join(stackPaths.jars(name), 'launcher'), lib);
  mkdirSync(join(baseDir, 'tmp'), { recursive: true });
  return { lib, classes };
}

/** Green or yellow: a single node leaves replicas unassigned, which is yellow and fine. */
async function clusterHealthy(): Promise<boolean> {
  try {
    const response = await fetch(`${stackEndpoints.elasticsearchUrl}/_cluster/health`, {
      signal: AbortSignal.timeout(2000),
    });
    if (!response.ok) {
      await response.arrayBuffer();
      return false;
    }
    const body = (await response.json()) as { status?: unknown };
    return body.status === 'green' || body.status === 'yellow';
  } catch {
    return false;
  }
}

export const elasticsearchService: StackService = {
  name,
  port: stackPorts.elasticsearch,
  // Warm start is 7-20 s, cold (downloads) under a minute; a 2-core box shared with Kafka and
  // other JVMs can stretch that several-fold.
  startTimeoutMs: 180_000,
  install: async () => {
    await install();
  },
  start: async () => {
    const { lib, classes } = await install();
    writeFileSync(settingsFile, nodeSettings());
    startDaemon({
      service: name,
      command: 'java',
      args: [
        ...jvmArgs(classes, lib),
        launcherClass,
        // basePath is the node's home; cdcflow.yml overrides the port and name, which are
        // repeated here only so the runner's start-up banner tells the truth.
        ...launcherArgs(settingsFile, {
          basePath: baseDir,
          numOfNode: '1',
          baseHttpPort: String(stackPorts.elasticsearch - 1),
          clusterName: 'cdcflow',
        }),
      ],
      cwd: baseDir,
    });
  },
  ready: clusterHealthy,
};
