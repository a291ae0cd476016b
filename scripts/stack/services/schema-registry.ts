/**
 * A Confluent-compatible schema registry: Apicurio Registry from Maven Central, started with
 * `java -jar`, no Docker. Clients talk to its Confluent API at /apis/ccompat/v7.
 *
 * Version: 3.0.9 because it is the newest line that runs on Java 17 (3.3.x is built for Java 21)
 * and its ccompat API works with @kafkajs/confluent-schema-registry 3.x, including compatibility
 * rules. Set CDCFLOW_SCHEMA_REGISTRY_VERSION to try another 3.0.x; 2.x archives lay out differently.
 *
 * Layout under ~/.cache/cdcflow:
 *   jars/schema-registry/apicurio-registry-app-<version>/   the unpacked `all` distribution
 *   data/schema-registry/registry.mv.db                     H2 file storage (see start())
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { stackEndpoints, stackPorts } from '../endpoints.ts';
import { fetchArtifact, type MavenArtifact } from '../maven.ts';
import { stackPaths } from '../paths.ts';
import { run, startDaemon } from '../process.ts';
import type { StackService } from '../service.ts';
import { httpOk } from '../wait.ts';

const name = 'schema-registry';
export const schemaRegistryVersion = process.env['CDCFLOW_SCHEMA_REGISTRY_VERSION'] ?? '3.0.9';

const distribution: MavenArtifact = {
  groupId: 'io.apicurio',
  artifactId: 'apicurio-registry-app',
  version: schemaRegistryVersion,
  classifier: 'all',
  type: 'tar.gz',
};
const distDir = join(stackPaths.jars(name), `apicurio-registry-app-${schemaRegistryVersion}`);
const runnerJar = join(distDir, `apicurio-registry-app-${schemaRegistryVersion}-runner.jar`);
const dataDir = stackPaths.data(name);

/** Apicurio 3.0.x is compiled for Java 17; an older `java` would fail later with a cryptic class-version error. */
async function checkJava(): Promise<void> {
  const output = await run('java', ['-version']).catch((error: unknown) => {
    throw new Error(`no usable \`java\` on PATH (Apicurio Registry needs Java 17+): ${String(error)}`);
  });
  const major = Number(/version "(?:1\.)?(\d+)/.exec(output)?.[1]);
  if (!(major >= 17))
    throw new Error(`Apicurio Registry ${schemaRegistryVersion} needs Java 17+, \`java -version\` says:\n${output}`);
}

/**
 * Downloads the distribution archive once and unpacks it beside itself. Unpacking goes to a
 * scratch folder renamed into place, so an interrupted install never leaves a half-filled folder
 * that a later run would take for complete; the archive is dropped after (Maven's repository keeps a copy).
 */
async function unpackDistribution(): Promise<void> {
  if (existsSync(runnerJar)) return;
  const archive = await fetchArtifact(name, distribution);
  const scratch = `${distDir}.partial`;
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  await run('tar', ['-xzf', archive, '-C', scratch]);
  if (!existsSync(join(scratch, `apicurio-registry-app-${schemaRegistryVersion}-runner.jar`))) {
    throw new Error(`${archive} holds no runner jar; is ${schemaRegistryVersion} a 3.0.x release?`);
  }
  rmSync(distDir, { recursive: true, force: true });
  renameSync(scratch, distDir);
  rmSync(archive, { force: true });
}

/**
 * A small heap and the serial collector suit a registry that serves a few cached lookups on a
 * shared 2-core box; C1 only (TieredStopAtLevel=1) cuts start-up CPU, which is what we wait on.
 * Storage is H2 in a file rather than Apicurio's default in-memory H2: Kafka's data outlives a
 * restart, and records written before it must still find their schema ids.
 */
function jvmArgs(): string[] {
  return [
    '-Xms64m',
    '-Xmx384m',
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.net.preferIPv4Stack=true',
    `-Dquarkus.http.host=127.0.0.1`,
    `-Dquarkus.http.port=${stackPorts.schemaRegistry}`,
    // Readiness polls would otherwise fill the log with one access line each.
    '-Dquarkus.http.access-log.enabled=false',
    `-Dapicurio.datasource.url=jdbc:h2:file:${join(dataDir, 'registry')}`,
    `-Dapicurio.import.work-dir=${dataDir}`,
    `-Dapicurio.storage.snapshot.location=${dataDir}`,
    '-jar',
    runnerJar,
  ];
}

export const schemaRegistryService: StackService = {
  name,
  port: stackPorts.schemaRegistry,
  // A Quarkus start takes ~7 s alone, but several times that while other JVMs start on 2 cores.
  startTimeoutMs: 180_000,

  async install() {
    await checkJava();
    await unpackDistribution();
    mkdirSync(dataDir, { recursive: true });
  },

  start() {
    startDaemon({ service: name, command: 'java', args: jvmArgs(), cwd: dataDir });
    return Promise.resolve();
  },

  // A real ccompat request, so a foreign process on the port (or a half-started one) never passes.
  ready: () => httpOk(`${stackEndpoints.schemaRegistryUrl}/subjects`),
};
