/**
 * An S3-compatible object store for checkpoints: S3Proxy (org.gaul:s3proxy, the
 * jar-with-dependencies from Maven Central) over jclouds' `filesystem` provider, no Docker.
 *
 * Version: 2.6.0, the newest that runs on Java 17 (later releases may need Java 21); override
 * with CDCFLOW_S3PROXY_VERSION. S3Proxy 2.6 ignores `If-None-Match: *` on PUT (it overwrites);
 * docs/object-storage.md says what that means for checkpoint completion.
 *
 * Layout under ~/.cache/cdcflow:
 *   jars/s3proxy/s3proxy-<version>-jar-with-dependencies.jar
 *   data/s3proxy/s3proxy.conf          generated on every start
 *   data/s3proxy/blobs/<bucket>/...    objects (the `cdcflow` bucket is a folder made at install)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stackPorts, stackS3 } from '../endpoints.ts';
import { fetchArtifact, type MavenArtifact } from '../maven.ts';
import { stackPaths } from '../paths.ts';
import { startDaemon } from '../process.ts';
import type { StackService } from '../service.ts';

const name = 's3proxy';
export const s3proxyVersion = process.env['CDCFLOW_S3PROXY_VERSION'] ?? '2.6.0';
const artifact: MavenArtifact = {
  groupId: 'org.gaul',
  artifactId: 's3proxy',
  version: s3proxyVersion,
  classifier: 'jar-with-dependencies',
};
const dataDir = stackPaths.data(name);
const blobDir = join(dataDir, 'blobs');

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

let jarPath: string | undefined;

export const s3proxyService: StackService = {
  name,
  port: stackPorts.s3proxy,
  startTimeoutMs: 60_000,

  async install() {
    jarPath = await fetchArtifact(name, artifact);
    // jclouds' filesystem provider maps a bucket to a folder: creating it is creating the bucket.
    mkdirSync(join(blobDir, stackS3.bucket), { recursive: true });
  },

  start() {
    const properties = join(dataDir, 's3proxy.conf');
    writeFileSync(properties, s3proxyProperties(stackPorts.s3proxy, blobDir));
    startDaemon({
      service: name,
      command: 'java',
      args: s3proxyArgs(
        jarPath ?? join(stackPaths.jars(name), `s3proxy-${s3proxyVersion}-jar-with-dependencies.jar`),
        properties,
      ),
      cwd: dataDir,
    });
    return Promise.resolve();
  },

  // An unsigned request gets S3's XML error document: that is S3Proxy answering, not just a port.
  async ready() {
    try {
      const response = await fetch(`${stackS3.endpoint}/`, { signal: AbortSignal.timeout(2000) });
      const body = await response.text();
      return body.includes('<Error>') || body.includes('<ListAllMyBucketsResult');
    } catch {
      return false;
    }
  },
};
