/** The reference workload on a topic named after its parameters, produced once and then reused. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { kafkaClientConfig, resolveKafkaConnection } from '../../operators/kafka-connection.ts';
import { generateWorkload } from '../workload/generator.ts';
import { produceWorkload } from '../workload/producer.ts';
import { fmt, mb } from './bench-format.ts';

/** The workload every benchmark reads (seed 1, 6 partitions, the generator's defaults otherwise). */
export const benchWorkload = (events: number, keys: number) => ({ seed: 1, events, keys, partitions: 6 }) as const;

/**
 * Reuses the topic while it holds the number of messages a previous production recorded. The
 * machine is shared and the name is the same in every checkout: a topic without our marker is
 * reused if it holds what the (deterministic) generator yields, and never deleted.
 */
export async function ensureWorkloadTopic(
  brokers: readonly string[],
  events: number,
  keys: number,
  prefix = 'bench.orders',
): Promise<{ topic: string; messages: number }> {
  const topic = `${prefix}.seed1.e${events}.k${keys}.p6`;
  const marker = markerOf(topic);
  let expected = existsSync(marker)
    ? (JSON.parse(readFileSync(marker, 'utf8')) as { messages: number }).messages
    : undefined;
  const admin = new Kafka(
    kafkaClientConfig(resolveKafkaConnection({ brokers }), { clientId: 'cdcflow-bench', logLevel: logLevel.NOTHING }),
  ).admin();
  await admin.connect();
  try {
    const exists = (await admin.listTopics()).includes(topic);
    const count = exists
      ? (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(BigInt(p.high) - BigInt(p.low)), 0)
      : 0;
    if (exists && expected === undefined) {
      const generated = countMessages(events, keys);
      if (count !== generated)
        throw new Error(
          `workload: ${topic} exists with ${count} messages, not the ${generated} the workload has, and this checkout did not produce it: delete it if it is yours, or let its producer finish`,
        );
      writeMarker(topic, count);
      expected = count;
    }
    if (exists && count === expected) {
      console.log(`workload: reusing ${topic} (${fmt(count)} messages)`);
      return { topic, messages: count };
    }
    if (exists) {
      // Ours (the marker says so), cut short: produce it again.
      await admin.deleteTopics({ topics: [topic] });
      for (let i = 0; i < 100 && (await admin.listTopics()).includes(topic); i++)
        await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await admin.disconnect();
  }
  console.log(
    `workload: producing ${fmt(events)} events over ${fmt(keys)} keys to ${topic} (once; later runs reuse it)`,
  );
  const started = Date.now();
  const produced = await produceWorkload({ brokers, topic, workload: benchWorkload(events, keys) });
  console.log(
    `workload: ${fmt(produced.records)} messages, ${mb(produced.bytes)} (${fmt(produced.bytes / produced.records)} B/message) in ${fmt((Date.now() - started) / 1000, 1)} s`,
  );
  writeMarker(topic, produced.records);
  return { topic, messages: produced.records };
}

const markerOf = (topic: string) => join('.cdcflow', 'bench', `${topic}.json`);

function writeMarker(topic: string, messages: number): void {
  mkdirSync(join('.cdcflow', 'bench'), { recursive: true });
  writeFileSync(markerOf(topic), JSON.stringify({ messages }));
}

function countMessages(events: number, keys: number): number {
  let messages = 0;
  for (const _ of generateWorkload(benchWorkload(events, keys))) messages += 1;
  return messages;
}
