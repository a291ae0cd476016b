import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stackPaths } from './paths.ts';
import { run } from './process.ts';

export interface MavenArtifact {
  readonly groupId: string;
  readonly artifactId: string;
  readonly version: string;
  readonly classifier?: string;
  readonly type?: string;
  /** Exclude transitive dependencies, e.g. to drop a logging binding that clashes. */
  readonly exclusions?: readonly string[];
}

// Concurrent Maven runs against one local repository can corrupt it, so they take turns.
let mavenQueue: Promise<unknown> = Promise.resolve();
function serialised<T>(task: () => Promise<T>): Promise<T> {
  const next = mavenQueue.then(task, task);
  mavenQueue = next.catch(() => undefined);
  return next;
}

/**
 * Resolves artifacts and all their runtime dependencies from Maven Central into a cache folder
 * `jars/<name>/lib` and returns that folder. Idempotent: a completed folder is reused as is.
 */
export function resolveClasspath(name: string, artifacts: readonly MavenArtifact[]): Promise<string> {
  const dir = stackPaths.jars(name);
  const lib = join(dir, 'lib');
  const marker = join(dir, '.complete');
  if (existsSync(marker)) return Promise.resolve(lib);
  return serialised(async () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'pom.xml'), pomFor(name, artifacts));
    await run(
      'mvn',
      ['-B', '-q', 'dependency:copy-dependencies', '-DincludeScope=runtime', `-DoutputDirectory=${lib}`],
      { cwd: dir },
    );
    if (!existsSync(lib) || readdirSync(lib).length === 0) throw new Error(`maven resolved no jars for ${name}`);
    writeFileSync(marker, new Date().toISOString());
    return lib;
  });
}

/** Downloads one artifact file (e.g. a distribution archive) into `jars/<name>/` and returns its path. */
export function fetchArtifact(name: string, artifact: MavenArtifact): Promise<string> {
  const dir = stackPaths.jars(name);
  const type = artifact.type ?? 'jar';
  const file = `${artifact.artifactId}-${artifact.version}${artifact.classifier ? `-${artifact.classifier}` : ''}.${type}`;
  const path = join(dir, file);
  if (existsSync(path)) return Promise.resolve(path);
  return serialised(async () => {
    mkdirSync(dir, { recursive: true });
    const coordinate = [artifact.groupId, artifact.artifactId, artifact.version, type, artifact.classifier]
      .filter((part) => part !== undefined)
      .join(':');
    await run('mvn', ['-B', '-q', 'dependency:copy', `-Dartifact=${coordinate}`, `-DoutputDirectory=${dir}`], {
      cwd: dir,
    });
    return path;
  });
}

function pomFor(name: string, artifacts: readonly MavenArtifact[]): string {
  const deps = artifacts
    .map((a) => {
      const exclusions = (a.exclusions ?? [])
        .map((e) => {
          const [g, art] = e.split(':');
          return `<exclusion><groupId>${g}</groupId><artifactId>${art}</artifactId></exclusion>`;
        })
        .join('');
      return `<dependency><groupId>${a.groupId}</groupId><artifactId>${a.artifactId}</artifactId><version>${a.version}</version>${
        a.classifier ? `<classifier>${a.classifier}</classifier>` : ''
      }${a.type ? `<type>${a.type}</type>` : ''}${exclusions ? `<exclusions>${exclusions}</exclusions>` : ''}</dependency>`;
    })
    .join('\n    ');
  return `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>cdcflow.stack</groupId>
  <artifactId>${name}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    ${deps}
  </dependencies>
</project>
`;
}
