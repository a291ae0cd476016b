/**
 * npm run bench -- clients [--events 200000] [--keys events/10] [--runs 3] [--no-confluent] [--clients kafkajs,platformatic,ckjs-kafkajs,ckjs-native]
 *
 * The raw consume ceiling of Kafka clients over the same workload topic, interleaved, each run
 * in a child process of its own: kafkajs (the client cdcflow's source ships with, the same
 * consumer settings as KafkajsFetcher: consume-ceiling.ts), `@platformatic/kafka` 1.x (the
 * last line that runs on Node 20; 2.x needs Node 22) and, optionally, `@confluentinc/kafka-javascript`
 * (librdkafka) through its KafkaJS-compatible API and its native batch API, installed on demand
 * outside the repo (confluent-client.ts; skipped with a message when it does not build). Each
 * consumer counts messages from the earliest offset, no decoding. Figures: messages/s over first → last message, process CPU µs
 * per message (the figure that matters on a shared machine), peak RSS.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Consumer, MessagesStreamModes } from '@platformatic/kafka';
import { endpointsFromEnv } from '../stack/endpoints.ts';
import { finish, mark, newSpan, rate, reportResult, runChild, type Measured } from './bench-child.ts';
import { fmt, loadAverage, machine, median } from './bench-format.ts';
import { ensureWorkloadTopic } from './bench-topic.ts';
import { confluentKjsCeiling, confluentNativeCeiling, ensureConfluentClient } from './confluent-client.ts';
import { consumeCeiling } from './consume-ceiling.ts';

type Client = 'kafkajs' | 'platformatic' | 'ckjs-kafkajs' | 'ckjs-native';
const CEILINGS: Record<Client, (brokers: readonly string[], topic: string, messages: number) => Promise<Measured>> = {
  kafkajs: consumeCeiling,
  platformatic: platformaticCeiling,
  'ckjs-kafkajs': confluentKjsCeiling,
  'ckjs-native': confluentNativeCeiling,
};
interface Spec {
  readonly client: Client;
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly messages: number;
}

/** `@platformatic/kafka`: a stream from the earliest offsets, raw Buffers, no commits. */
async function platformaticCeiling(brokers: readonly string[], topic: string, messages: number): Promise<Measured> {
  const wallStart = Date.now();
  const consumer = new Consumer({
    groupId: `bench-ceiling-pk-${process.pid}-${Date.now()}`,
    clientId: 'cdcflow-bench-ceiling-pk',
    bootstrapBrokers: [...brokers],
    // As KafkajsFetcher: 1 MiB per partition and fetch.
    maxBytes: 6 * 1024 * 1024,
    sessionTimeout: 30_000,
    heartbeatInterval: 3000,
  });
  const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: false });
  let count = 0;
  const span = newSpan();
  await new Promise<void>((resolve, reject) => {
    stream.on('data', () => {
      count += 1;
      if ((count & 255) === 0 || count >= messages) mark(span);
      if (count >= messages) resolve();
    });
    stream.on('error', reject);
  });
  const result = finish(count, span, wallStart);
  await stream.close();
  await consumer.close(true);
  return result;
}

const CHILD = fileURLToPath(import.meta.url);
const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '200000' },
    keys: { type: 'string' },
    runs: { type: 'string', default: '3' },
    'no-confluent': { type: 'boolean', default: false },
    clients: { type: 'string' },
    child: { type: 'string' },
  },
});

if (values.child !== undefined) {
  const spec = JSON.parse(values.child) as Spec;
  reportResult(await CEILINGS[spec.client](spec.brokers, spec.topic, spec.messages));
  setTimeout(() => process.exit(0), 1000).unref();
} else {
  const events = Number(values.events);
  const keys = values.keys === undefined ? Math.max(1, Math.round(events / 10)) : Number(values.keys);
  const brokers = endpointsFromEnv().kafkaBrokers.split(',');
  console.log(`machine: ${machine()}`);
  const { topic, messages } = await ensureWorkloadTopic(brokers, events, keys, 'bench.sinks.orders');
  const wanted = (values.clients ?? Object.keys(CEILINGS).join(',')).split(',');
  const unknown = wanted.filter((c) => !(c in CEILINGS));
  if (unknown.length > 0)
    throw new Error(`unknown --clients ${unknown.join(', ')}; choose from ${Object.keys(CEILINGS).join(', ')}`);
  let clients = wanted as Client[];
  const confluent = clients.filter((c) => c.startsWith('ckjs-'));
  if (confluent.length > 0) {
    const installed = values['no-confluent']
      ? { ok: false as const, reason: '--no-confluent' }
      : ensureConfluentClient();
    if (!installed.ok) {
      console.log(`@confluentinc/kafka-javascript: skipped, ${installed.reason}`);
      clients = clients.filter((c) => !confluent.includes(c));
    }
  }
  const results = new Map<Client, Measured[]>(clients.map((c) => [c, []]));
  for (let round = 1; round <= Number(values.runs); round++) {
    for (const client of clients) {
      const r = await runChild<Measured>(
        CHILD,
        { client, brokers, topic, messages } satisfies Spec,
        `${client} run ${round}`,
      );
      results.get(client)?.push(r);
      console.log(
        `run ${round}  ${client.padEnd(13)} ${fmt(rate(r)).padStart(9)} msg/s  ${fmt((r.cpuSeconds / r.messages) * 1e6, 1).padStart(6)} µs CPU/msg  RSS ${fmt(r.maxRssMb)} MB  load ${loadAverage()}`,
      );
    }
  }
  for (const [client, rs] of results) {
    console.log(
      `RESULT ${client.padEnd(13)} median ${fmt(median(rs.map(rate)))} msg/s, ${fmt(median(rs.map((r) => (r.cpuSeconds / r.messages) * 1e6)), 1)} µs CPU/msg over ${fmt(messages)} messages`,
    );
  }
}
