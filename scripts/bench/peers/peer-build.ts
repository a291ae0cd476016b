/**
 * Builds the peers of `npm run bench -- compare` on first use, into `.cdcflow/peers/` (git-ignored):
 * the Maven projects compile there with their classpath written beside them (`mvn compile
 * dependency:build-classpath`, jars stay in the local Maven repository), Quix Streams goes into a
 * venv. A stamp of the sources' content skips the build while they are unchanged. A build that
 * fails is reported as such; the bench goes on without that peer.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type PeerName = 'flink' | 'kstreams' | 'quix';
export const PEERS: readonly PeerName[] = ['flink', 'kstreams', 'quix'];

/** The versions the projects pin (pom.xml, requirements.txt), for the report. */
export const PEER_VERSIONS: Record<PeerName, string> = {
  flink: 'Flink 2.2.1 (MiniCluster, connector 5.0.0-2.2)',
  kstreams: 'Kafka Streams 3.9.1',
  quix: 'Quix Streams 3.28.1',
};

const SOURCES = fileURLToPath(new URL('.', import.meta.url));
export const PEER_CACHE = resolve('.cdcflow', 'peers');

/** How to start a built peer: the command and the arguments before the job's own. */
export interface PeerLaunch {
  readonly command: string;
  readonly args: readonly string[];
}

/** Flink's own --add-opens set for Java 17 (what its launcher passes). */
const JAVA_OPENS = [
  'java.util',
  'java.lang',
  'java.lang.invoke',
  'java.io',
  'java.net',
  'java.nio',
  'sun.nio.ch',
  'java.time',
  'java.lang.reflect',
  'java.text',
  'java.util.concurrent',
  'java.util.concurrent.atomic',
].map((p) => `--add-opens=java.base/${p}=ALL-UNNAMED`);

export async function buildPeer(peer: PeerName, log: (line: string) => void, timeoutMs = 900_000): Promise<PeerLaunch> {
  const source = join(SOURCES, peer);
  const out = join(PEER_CACHE, peer);
  const stamp = join(out, 'stamp');
  const hash = sourceHash(source);
  mkdirSync(out, { recursive: true });
  const fresh = existsSync(stamp) && readFileSync(stamp, 'utf8') === hash;
  if (peer === 'quix') {
    const python = join(out, 'venv', 'bin', 'python');
    if (!fresh) {
      log(`building ${peer}: venv + pip install -r requirements.txt into ${out}`);
      await run('python3.11', ['-m', 'venv', join(out, 'venv')], source, timeoutMs).catch(() =>
        run('python3', ['-m', 'venv', join(out, 'venv')], source, timeoutMs),
      );
      await run(join(out, 'venv', 'bin', 'pip'), ['install', '--quiet', '-r', 'requirements.txt'], source, timeoutMs);
      writeFileSync(stamp, hash);
    }
    return { command: python, args: [join(source, 'jobs.py')] };
  }
  const classpathFile = join(out, 'classpath.txt');
  if (!fresh) {
    log(`building ${peer}: mvn compile into ${out} (first use downloads its dependencies)`);
    await run(
      'mvn',
      ['-B', '-q', `-DbuildDir=${out}`, 'compile', 'dependency:build-classpath', `-Dmdep.outputFile=${classpathFile}`],
      source,
      timeoutMs,
    );
    writeFileSync(stamp, hash);
  }
  const classpath = `${join(out, 'classes')}:${readFileSync(classpathFile, 'utf8').trim()}`;
  const main = peer === 'flink' ? 'cdcflow.peers.flink.Jobs' : 'cdcflow.peers.kstreams.Jobs';
  return { command: 'java', args: [...(peer === 'flink' ? JAVA_OPENS : []), '-cp', classpath, main] };
}

function sourceHash(dir: string): string {
  const hash = createHash('sha256');
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else hash.update(path).update(readFileSync(path));
    }
  };
  walk(dir);
  return hash.digest('hex');
}

function run(command: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(command, args, {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    let output = '';
    proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
    proc.on('error', reject);
    proc.on('exit', (code, signal) =>
      code === 0
        ? resolvePromise()
        : reject(
            new Error(
              `${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${output.trim().split('\n').slice(-5).join(' | ')}`,
            ),
          ),
    );
  });
}
