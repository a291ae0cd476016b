/**
 * The bad-records test and benchmark share this: a topic mixing the reference workload with the
 * malformed-input corpus (scripts/workload/bad-records.ts), produced partition by partition so
 * every bad record's offset is known, and reading a dead-letter topic back in full.
 */
import type { Kafka } from 'kafkajs';
import { readTopicToEnd, type TopicMessage } from '../../operators/sources/kafka/topic-read.ts';
import { badRecordCorpus, CORPUS_TOPIC_MAX_MESSAGE_BYTES, type BadRecord } from './bad-records.ts';
import { generateWorkload, type WorkloadRecord } from './generator.ts';
import type { WorkloadOptions } from './workload-options.ts';
import { Prng } from './prng.ts';

export interface PlacedBad extends BadRecord {
  readonly partition: number;
  offset: string;
}

export interface MixedTopic {
  readonly good: WorkloadRecord[];
  readonly bad: PlacedBad[];
}

type Entry = { readonly good: WorkloadRecord } | { readonly bad: PlacedBad };

/** Generates the mix: `copies` rounds of the corpus spread at seeded random places among the good records. */
export function mixedWorkload(
  workload: WorkloadOptions & { partitions: number; seed: number },
  copies: number,
): { entries: Entry[]; good: WorkloadRecord[]; bad: PlacedBad[] } {
  const good = [...generateWorkload(workload)];
  if (copies === 0) return { entries: good.map((g) => ({ good: g })), good, bad: [] };
  const template = good.find((r) => r.event !== null)?.event;
  if (template === undefined || template === null) throw new Error('the workload has no event to use as a template');
  const firstTs = Math.min(...good.flatMap((r) => (r.event === null ? [] : [r.event.source.ts_ms])));
  const corpus = badRecordCorpus({ seed: workload.seed, copies, template, tsMs: firstTs - 3_600_000, lsn: 1 });
  const prng = new Prng(workload.seed ^ 0x5eed);
  const bad: PlacedBad[] = corpus.map((b) => ({ ...b, partition: prng.int(workload.partitions), offset: '' }));
  const positions = new Map<number, PlacedBad[]>();
  for (const b of bad) {
    const at = prng.int(good.length + 1);
    positions.set(at, [...(positions.get(at) ?? []), b]);
  }
  const entries: Entry[] = [];
  const latestTs = new Map<number, number>();
  for (let i = 0; i <= good.length; i++) {
    for (const b of positions.get(i) ?? [])
      entries.push({ bad: b.inStreamTime === true ? inStream(b, latestTs.get(b.partition) ?? firstTs) : b });
    const g = good[i];
    if (g === undefined) continue;
    entries.push({ good: g });
    if (g.event !== null) latestTs.set(g.partition, Math.max(latestTs.get(g.partition) ?? 0, g.event.source.ts_ms));
  }
  const placed = entries.flatMap((e) => ('bad' in e ? [e.bad] : []));
  return { entries, good, bad: placed };
}

/** The record with the event time `tsMs` (its value is a JSON change event). */
function inStream(b: PlacedBad, tsMs: number): PlacedBad {
  const event = JSON.parse((b.value as Buffer).toString('utf8')) as { source: Record<string, unknown>; ts_ms: number };
  event.source['ts_ms'] = tsMs;
  event.ts_ms = tsMs;
  return { ...b, value: Buffer.from(JSON.stringify(event), 'utf8') };
}

/** Creates the topic (allowing the corpus's 1.5 MB record) and produces the mix, recording each bad record's offset. */
export async function produceMixed(
  kafka: Kafka,
  topic: string,
  partitions: number,
  entries: readonly Entry[],
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [
        {
          topic,
          numPartitions: partitions,
          replicationFactor: 1,
          configEntries: [{ name: 'max.message.bytes', value: String(CORPUS_TOPIC_MAX_MESSAGE_BYTES) }],
        },
      ],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let p = 0; p < partitions; p++) {
      const mine = entries.filter((e) => ('good' in e ? e.good.partition : e.bad.partition) === p);
      let chunk: Entry[] = [];
      let bytes = 0;
      const flush = async () => {
        if (chunk.length === 0) return;
        const [meta] = await producer.send({
          topic,
          acks: -1,
          messages: chunk.map((e) =>
            'good' in e
              ? { key: e.good.key, value: e.good.value, partition: p }
              : { key: e.bad.key, value: e.bad.value, partition: p },
          ),
        });
        const base = BigInt(meta?.baseOffset ?? '0');
        chunk.forEach((e, i) => {
          if ('bad' in e) e.bad.offset = String(base + BigInt(i));
        });
        chunk = [];
        bytes = 0;
      };
      for (const e of mine) {
        const size = 'good' in e ? (e.good.value?.length ?? 0) : (e.bad.value?.length ?? 0);
        if (chunk.length >= 500 || bytes + size > CORPUS_TOPIC_MAX_MESSAGE_BYTES / 2) await flush();
        chunk.push(e);
        bytes += size;
      }
      await flush();
    }
  } finally {
    await producer.disconnect();
  }
}

/** Every message of `topic` up to its end offsets now (fetches allow the corpus's large letters). */
export function readAll(kafka: Kafka, topic: string, timeoutMs = 30_000): Promise<TopicMessage[]> {
  return readTopicToEnd(kafka, topic, {
    timeoutMs,
    groupPrefix: `${topic}-reader`,
    onTimeout: (read) => `read ${read} messages of ${topic}, not to its end, in time`,
  });
}
