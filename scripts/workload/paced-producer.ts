/**
 * The reference workload as a live source: Debezium events written at a fixed rate, each stamped
 * `source.ts_ms` = the moment it is produced — as if Postgres had committed it just then — so
 * "now − source.ts_ms" downstream is the pipeline's real delay. Among them, every `probeEveryMs`,
 * an insert of a fresh probe id (above every workload id) that an observer can look for in a
 * sink to time its visibility independently of the job's own metrics.
 */
import { Kafka, logLevel, type Message } from 'kafkajs';
import { kafkaClientConfig, resolveKafkaConnection } from '../../operators/kafka-connection.ts';
import { generateWorkload } from './generator.ts';
import { kafkaPartition } from './murmur2.ts';
import type { OrderEnvelope } from './orders-model.ts';
import type { WorkloadOptions } from './workload-options.ts';

/** Probe ids start here: far above the ids of any workload size. */
export const PROBE_ID_BASE = 1_000_000_000;

export interface PacedProducerOptions {
  readonly brokers: readonly string[];
  /** Created with `workload.partitions` partitions if missing. */
  readonly topic: string;
  /** Events per second (tombstones ride along uncounted). */
  readonly rate: number;
  readonly workload?: WorkloadOptions;
  /** @default 50 */
  readonly probeEveryMs?: number;
  /** Called when a probe was acknowledged by Kafka, with its id and source.ts_ms. */
  readonly onProbe?: (id: number, sourceTsMs: number) => void;
}

export interface PacedProducer {
  /** Stops after the send in flight; resolves with what was sent. */
  stop(): Promise<{ readonly events: number; readonly probes: number; readonly seconds: number }>;
}

const TICK_MS = 10;
/** Events per send: ~650 KB, well under the broker's 1 MB per partition batch even when behind. */
const MAX_PER_SEND = 500;

/** Starts producing at once, in the background, until `stop()`. */
export async function startPacedProducer(options: PacedProducerOptions): Promise<PacedProducer> {
  const partitions = options.workload?.partitions ?? 6;
  const kafka = new Kafka(
    kafkaClientConfig(resolveKafkaConnection({ brokers: options.brokers }), {
      clientId: 'cdcflow-paced-producer',
      logLevel: logLevel.WARN,
    }),
  );
  const admin = kafka.admin();
  await admin.connect();
  if (!(await admin.listTopics()).includes(options.topic))
    await admin.createTopics({ topics: [{ topic: options.topic, numPartitions: partitions }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  // One run of the workload, sized for 10 minutes: a second run would restart the LSNs, and the
  // upsert would drop its changes as replays.
  const events = generateWorkload({ ...options.workload, events: Math.ceil(options.rate * 600) });
  const probeEveryMs = options.probeEveryMs ?? 50;
  let stopping = false;
  let sent = 0;
  let probes = 0;
  let lastLsn = 0;
  let nextProbeAt = 0;
  const started = Date.now();
  /** The messages due at `now`: workload events (with their tombstones) to catch up with the rate. */
  const due = (now: number): Message[] => {
    const target = Math.min(Math.floor(((now - started) * options.rate) / 1000), sent + MAX_PER_SEND);
    const messages: Message[] = [];
    while (sent < target) {
      const next = events.next();
      if (next.done === true)
        throw new Error(`paced producer: the workload is used up after ${sent} events; run for less than 10 minutes`);
      const record = next.value;
      if (record.event !== null) {
        lastLsn = record.event.source.lsn;
        sent += 1;
      }
      messages.push({
        key: record.key,
        value: record.event === null ? null : stamped(record.event, now),
        partition: record.partition,
      });
    }
    return messages;
  };
  const loop = (async () => {
    while (!stopping) {
      const now = Date.now();
      const messages = due(now);
      const probe = now >= nextProbeAt ? { id: PROBE_ID_BASE + probes, ts: now } : undefined;
      if (probe !== undefined) {
        const key = Buffer.from(`{"id":${probe.id}}`);
        messages.push({
          key,
          value: probeEvent(probe.id, probe.ts, lastLsn),
          partition: kafkaPartition(key, partitions),
        });
        probes += 1;
        nextProbeAt = now + probeEveryMs;
      }
      if (messages.length > 0) await producer.send({ topic: options.topic, messages, acks: -1 });
      if (probe !== undefined) options.onProbe?.(probe.id, probe.ts);
      // Behind (the event loop stalled, the broker was slow): catch up without waiting.
      const behind = Math.floor(((Date.now() - started) * options.rate) / 1000) - sent >= MAX_PER_SEND;
      await new Promise((r) => setTimeout(r, behind ? 0 : Math.max(0, TICK_MS - (Date.now() - now))));
    }
  })();
  loop.catch(() => undefined); // reported by stop()
  return {
    async stop() {
      stopping = true;
      await loop;
      await producer.disconnect();
      return { events: sent, probes, seconds: (Date.now() - started) / 1000 };
    },
  };
}

function stamped(event: OrderEnvelope, now: number): Buffer {
  return Buffer.from(JSON.stringify({ ...event, source: { ...event.source, ts_ms: now }, ts_ms: now }));
}

/** An insert of order `id`, committed at `ts`. */
function probeEvent(id: number, ts: number, lsn: number): Buffer {
  const iso = new Date(ts).toISOString();
  const after = {
    id,
    customer_id: 1,
    status: 'pending',
    amount: '1.00',
    currency: 'EUR',
    shipping_address: 'probe',
    notes: 'probe',
    created_at: iso,
    updated_at: iso,
  };
  const source = {
    version: '2.7.3.Final',
    connector: 'postgresql',
    name: 'ecommerce',
    ts_ms: ts,
    snapshot: 'false',
    db: 'ecommerce',
    sequence: null,
    schema: 'public',
    table: 'orders',
    txId: 1,
    lsn,
    xmin: null,
  };
  return Buffer.from(JSON.stringify({ before: null, after, source, op: 'c', ts_ms: ts, transaction: null }));
}
