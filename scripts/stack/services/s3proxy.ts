/**
 * S3-compatible object stores for checkpoints: S3Proxy (org.gaul:s3proxy, the
 * jar-with-dependencies from Maven Central) over its `filesystem` provider, no Docker. Two
 * instances, each with its own port and folder:
 *
 * - `s3proxy` (19000): 2.6.0 (override with CDCFLOW_S3PROXY_VERSION). It ignores `If-None-Match: *`
 *   and `If-Match` on PUT (it overwrites); docs/object-storage.md says what that means for
 *   checkpoint completion, and group mode refuses it for claims.
 * - `s3proxy-conditional` (19100): 4.1.0 (CDCFLOW_S3PROXY_CONDITIONAL_VERSION), still built for
 *   Java 17, whose filesystem store creates an object with `If-None-Match: *` atomically (a hard
 *   link): group-mode claims under `s3://` (runtime/group/s3-claim-store.ts) are tested on it.
 *   Optional: if it cannot be installed, `up` says so and its tests skip.
 *
 * Layout under ~/.cache/cdcflow (per instance):
 *   jars/<name>/s3proxy-<version>-jar-with-dependencies.jar
 *   data/<name>/s3proxy.conf          generated on every start
 *   data/<name>/blobs/<bucket>/...    objects (the `cdcflow` bucket is a folder made at install)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stackPorts, stackS3 } from '../endpoints.ts';
import { fetchArtifact, type MavenArtifact } from '../maven.ts';
import { stackPaths } from '../paths.ts';
import { startDaemon } from '../process.ts';
import type { StackService } from '../service.ts';

const artifactOf = (version: string): MavenArtifact => ({
  groupId: 'org.gaul',
  artifactId: 's3proxy',
  version,
  classifier: 'jar-with-dependencies',
});

/** S3Proxy's properties: signed requests (v2 or v4) with the stack's fixed key, objects as files. */
export function s3proxyProperties(port: number, blobs: string): string {
  return [
    `s3proxy.endpoint=http://127.0.0.1:${port}`,
    's3proxy.authorization=aws-v2-or-v4',
    `s3proxy.identity=${stackS3.accessKeyId}`,
    `s3proxy.credential=${stackS3.secretAccessKey}`,
    'jclouds.provider=filesystem',
    `jclouds.filesystem.basedir=${blobs}`,
    '',
  ].join('\n');
}

/** The java command line; a small heap and C1 only, as for the other JVMs on this 2-core box. */
export function s3proxyArgs(jar: string, properties: string): string[] {
  return [
    '-Xms32m',
    '-Xmx192m',
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-XX:+ExitOnOutOfMemoryError',
    '-jar',
    jar,
    '--properties',
    properties,
  ];
}

function s3proxyInstance(name: string, version: string, port: number, optional: boolean): StackService {
  const dataDir = stackPaths.data(name);
  const blobDir = join(dataDir, 'blobs');
  let jarPath: string | undefined;
  return {
    name,
    port,
    startTimeoutMs: 60_000,
    ...(optional ? { optional: true } : {}),

    async install() {
      jarPath = await fetchArtifact(name, artifactOf(version));
      // The filesystem provider maps a bucket to a folder: creating it is creating the bucket.
      mkdirSync(join(blobDir, stackS3.bucket), { recursive: true });
    },

    start() {
      const properties = join(dataDir, 's3proxy.conf');
      writeFileSync(properties, s3proxyProperties(port, blobDir));
      startDaemon({
        service: name,
        command: 'java',
        args: s3proxyArgs(
          jarPath ?? join(stackPaths.jars(name), `s3proxy-${version}-jar-with-dependencies.jar`),
          properties,
        ),
        cwd: dataDir,
      });
      return Promise.resolve();
    },

    // An unsigned request gets S3's XML error document: that is S3Proxy answering, not just a port.
    async ready() {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
        const body = await response.text();
        return body.includes('<Error>') || body.includes('<ListAllMyBucketsResult');
      } catch {
        return false;
      }
    },
  };
}

export const s3proxyVersion = process.env['CDCFLOW_S3PROXY_VERSION'] ?? '2.6.0';
export const s3proxyService = s3proxyInstance('s3proxy', s3proxyVersion, stackPorts.s3proxy, false);

export const s3proxyConditionalVersion = process.env['CDCFLOW_S3PROXY_CONDITIONAL_VERSION'] ?? '4.1.0';
export const s3proxyConditionalService = s3proxyInstance(
  's3proxy-conditional',
  s3proxyConditionalVersion,
  stackPorts.s3proxyConditional,
  true,
);
