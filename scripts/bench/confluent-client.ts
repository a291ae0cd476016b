/**
 * `@confluentinc/kafka-javascript` (librdkafka) as an optional contender of the clients bench.
 *
 * It is not a dependency of cdcflow: its native build adds minutes to every `npm ci`. The bench
 * installs it on demand into a cache directory outside the repo and loads it from there. It builds
 * from its npm package only against the system libraries (`CKJS_LINKING=dynamic`; Debian
 * `libzstd-dev libcurl4-openssl-dev liblz4-dev libsasl2-dev libssl-dev zlib1g-dev`), since its
 * default configure downloads static dependencies, which this machine cannot reach.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { finish, mark, newSpan, type Measured } from './bench-child.ts';

export const CONFLUENT_VERSION = '1.10.1';
const PACKAGE = '@confluentinc/kafka-javascript';

export const clientsCacheDir = (): string =>
  process.env.CDCFLOW_BENCH_CLIENTS_DIR ?? join(homedir(), '.cache', 'cdcflow', 'bench-clients');

/** Installs the package into the cache when absent; returns why not when the build fails. */
export function ensureConfluentClient(): { readonly ok: true } | { readonly ok: false; readonly reason: string } {
  const dir = clientsCacheDir();
  if (existsSync(join(dir, 'node_modules', PACKAGE, 'build', 'Release', 'confluent-kafka-javascript.node')))
    return { ok: true };
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'package.json')))
    writeFileSync(join(dir, 'package.json'), '{ "name": "cdcflow-bench-clients", "private": true }\n');
  console.log(
    `installing ${PACKAGE}@${CONFLUENT_VERSION} into ${dir} (native build, a few minutes; log in ${join(dir, 'install.log')})`,
  );
  try {
    const out = execFileSync(
      'npm',
      ['install', '--no-audit', '--no-fund', '--no-save', `${PACKAGE}@${CONFLUENT_VERSION}`],
      {
        cwd: dir,
        env: { ...process.env, CKJS_LINKING: 'dynamic' },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 15 * 60_000,
      },
    );
    writeFileSync(join(dir, 'install.log'), out);
    return { ok: true };
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    writeFileSync(join(dir, 'install.log'), err.stderr ?? err.message);
    return {
      ok: false,
      reason: `${PACKAGE} did not install or build (see ${join(dir, 'install.log')}; it needs CKJS_LINKING=dynamic and the Debian packages libzstd-dev libcurl4-openssl-dev liblz4-dev libsasl2-dev libssl-dev zlib1g-dev)`,
    };
  }
}

// The few parts of the package's API the bench uses, typed here because it is loaded at run time.
interface RdMessage {
  readonly offset: number;
}
interface NativeConsumer {
  connect(options: Record<string, never>, cb: (err: Error | null) => void): void;
  subscribe(topics: string[]): void;
  consume(count: number, cb: (err: Error | null, messages: RdMessage[]) => void): void;
  setDefaultConsumeTimeout(ms: number): void;
  disconnect(cb: () => void): void;
}
interface KjsBatch {
  readonly messages: readonly unknown[];
  lastOffset(): string;
}
interface KjsConsumer {
  connect(): Promise<void>;
  subscribe(s: { topics: string[] }): Promise<void>;
  run(r: { eachBatch: (p: { batch: KjsBatch; resolveOffset: (o: string) => void }) => Promise<void> }): Promise<void>;
  disconnect(): Promise<void>;
}
interface ConfluentModule {
  KafkaConsumer: new (
    global: Record<string, string | number | boolean>,
    topic: Record<string, string>,
  ) => NativeConsumer;
  KafkaJS: {
    Kafka: new (c: { kafkaJS: Record<string, unknown> }) => {
      consumer(c: { kafkaJS: Record<string, unknown>; [k: string]: unknown }): KjsConsumer;
    };
  };
}

function load(): ConfluentModule {
  return createRequire(join(clientsCacheDir(), 'package.json'))(PACKAGE) as ConfluentModule;
}

/** The KafkaJS-compatible API (what a port of KafkajsFetcher would use): eachBatch from earliest. */
export async function confluentKjsCeiling(
  brokers: readonly string[],
  topic: string,
  messages: number,
): Promise<Measured> {
  const wallStart = Date.now();
  const { KafkaJS } = load();
  const consumer = new KafkaJS.Kafka({
    kafkaJS: { brokers: [...brokers], clientId: 'cdcflow-bench-ceiling-ckjs', logLevel: 1 },
  }).consumer({
    kafkaJS: {
      groupId: `bench-ceiling-ckjs-${process.pid}-${Date.now()}`,
      fromBeginning: true,
      autoCommit: false,
      sessionTimeout: 30_000,
      heartbeatInterval: 3000,
    },
    // As KafkajsFetcher: 1 MiB per partition. Batches are built client-side (default 32 messages);
    // 1000 matches the native run below and kafkajs' per-partition batches.
    'max.partition.fetch.bytes': 1024 * 1024,
    'js.consumer.max.batch.size': 1000,
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic] });
  let count = 0;
  const span = newSpan();
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachBatch: async ({ batch, resolveOffset }) => {
          count += batch.messages.length;
          resolveOffset(batch.lastOffset());
          mark(span);
          if (count >= messages) resolve();
        },
      })
      .catch(reject);
  });
  const result = finish(count, span, wallStart);
  await consumer.disconnect();
  return result;
}

/** The native (node-rdkafka-style) API: `consume(n)` in a loop, batches of up to 1000 messages. */
export async function confluentNativeCeiling(
  brokers: readonly string[],
  topic: string,
  messages: number,
): Promise<Measured> {
  const wallStart = Date.now();
  const { KafkaConsumer } = load();
  const consumer = new KafkaConsumer(
    {
      'group.id': `bench-ceiling-rd-${process.pid}-${Date.now()}`,
      'client.id': 'cdcflow-bench-ceiling-rd',
      'metadata.broker.list': brokers.join(','),
      'enable.auto.commit': false,
      'max.partition.fetch.bytes': 1024 * 1024,
      'session.timeout.ms': 30_000,
    },
    { 'auto.offset.reset': 'earliest' },
  );
  await new Promise<void>((resolve, reject) => consumer.connect({}, (err) => (err ? reject(err) : resolve())));
  consumer.setDefaultConsumeTimeout(100);
  consumer.subscribe([topic]);
  let count = 0;
  const span = newSpan();
  await new Promise<void>((resolve, reject) => {
    const next = (): void =>
      consumer.consume(1000, (err, batch) => {
        if (err) return reject(err);
        if (batch.length > 0) {
          count += batch.length;
          mark(span);
        }
        if (count >= messages) resolve();
        else next();
      });
    next();
  });
  const result = finish(count, span, wallStart);
  await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  return result;
}
