/**
 * Writes the reference workload to Kafka a slice at a time, so a chaos test can keep a job busy
 * across its restarts instead of handing it everything up front. Slices go out strictly in
 * generation order (each `feed` waits for the previous one), so every partition holds exactly the
 * sequence `generateWorkload` produced and the oracles apply unchanged.
 */
import { Kafka, Partitioners, logLevel, type Message, type Producer } from 'kafkajs';
import { kafkaClientConfig, resolveKafkaConnection } from '../../operators/kafka-connection.ts';
import { generateWorkload, type WorkloadRecord } from '../../scripts/workload/generator.ts';
import { resolveWorkloadOptions, type WorkloadOptions } from '../../scripts/workload/workload-options.ts';

export class WorkloadFeeder {
  private readonly records: Iterator<WorkloadRecord>;
  private readonly producer: Producer;
  private readonly kafka: Kafka;
  private queue: Promise<void> = Promise.resolve();
  private exhausted = false;
  /** Messages per second while a steady feed runs; undefined writes as fast as the broker takes them. */
  private perSecond: number | undefined;
  /** After `hurry`, no steady feed is paced any more (queued ones included). */
  private hurried = false;
  /** Messages written so far (change events, tombstones and duplicates). */
  written = 0;

  constructor(
    brokers: readonly string[],
    readonly topic: string,
    readonly workload: WorkloadOptions,
  ) {
    this.records = generateWorkload(workload);
    this.kafka = new Kafka(
      kafkaClientConfig(resolveKafkaConnection({ brokers }), {
        clientId: 'cdcflow-feeder',
        logLevel: logLevel.NOTHING,
      }),
    );
    this.producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  }

  /** Creates the topic with the workload's partition count and connects the producer. */
  async open(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const partitions = resolveWorkloadOptions(this.workload).partitions;
      await admin.createTopics({ topics: [{ topic: this.topic, numPartitions: partitions }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
    await this.producer.connect();
  }

  /** Queues the next `count` messages; resolves when they (and every earlier slice) are written. */
  feed(count: number): Promise<void> {
    const slice = this.queue.then(() => this.write(count));
    this.queue = slice.catch(() => undefined);
    return slice;
  }

  /**
   * Queues the next `count` messages at about `perSecond`, so a job that keeps up always has
   * records arriving: a kill then finds an open transaction that holds records. `hurry` lifts the
   * rate for what is left.
   */
  feedSteadily(count: number, perSecond: number): Promise<void> {
    const slice = this.queue.then(async () => {
      this.perSecond = this.hurried ? undefined : perSecond;
      try {
        await this.write(count);
      } finally {
        this.perSecond = undefined;
      }
    });
    this.queue = slice.catch(() => undefined);
    return slice;
  }

  /** Ends the pacing of every steady feed, running or queued; the rest goes out at full speed. */
  hurry(): void {
    this.hurried = true;
    this.perSecond = undefined;
  }

  /** Writes whatever is left of the workload. */
  feedRest(): Promise<void> {
    return this.feed(Number.POSITIVE_INFINITY);
  }

  get done(): boolean {
    return this.exhausted;
  }

  async close(): Promise<void> {
    await this.queue;
    await this.producer.disconnect();
  }

  private async write(count: number): Promise<void> {
    let batch: Message[] = [];
    const started = Date.now();
    for (let n = 0; n < count && !this.exhausted; n++) {
      if (this.perSecond !== undefined && batch.length >= Math.max(1, this.perSecond / 20)) {
        batch = await this.send(batch);
        const due = started + (n / this.perSecond) * 1000;
        if (this.perSecond !== undefined && due > Date.now())
          await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
      }
      const next = this.records.next();
      if (next.done === true) {
        this.exhausted = true;
        break;
      }
      batch.push({ key: next.value.key, value: next.value.value, partition: next.value.partition });
      if (batch.length >= 1_000) batch = await this.send(batch);
    }
    if (batch.length > 0) await this.send(batch);
  }

  private async send(batch: Message[]): Promise<Message[]> {
    await this.producer.send({ topic: this.topic, messages: batch, acks: -1 });
    this.written += batch.length;
    return [];
  }
}
