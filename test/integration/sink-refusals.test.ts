/**
 * Issue 10, defect 2 for the Kafka and Redis sinks: a record the target refuses whatever the retry
 * used to fail the whole transaction (Kafka: a record over the topic's max.message.bytes aborts
 * every record of the checkpoint) or the job (Redis: a ttl ≤ 0, a toWrite that throws), in a
 * restart loop. Now such records are dead-lettered (stage = the sink's uid, reason, source
 * coordinates) under the sink's `onRefused` policy, and the rest commits exactly once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Kafka, logLevel, type Admin, type Consumer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../operators/sources/kafka/dead-letter.ts';
import type { DeadLetterWriter } from '../../operators/sources/kafka/dead-letter-writer.ts';
import { kafkaSink } from '../../operators/sinks/kafka/kafka-sink.ts';
import { redisSink } from '../../operators/sinks/redis/redis-sink.ts';
import type { SinkDefinition } from '../../operators/sinks/sink.ts';
import { StreamEnvironment, fromCollection } from '../../runtime/index.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { readValuesUntil } from '../support/kafka-read.ts';

interface Item {
  readonly id: number;
  readonly text: string;
  /** How the record goes wrong, if it does. */
  readonly bad?: 'too-large' | 'serialize-throws' | 'key-not-bytes' | 'ttl' | 'bigint';
  readonly origin: { topic: string; partition: number; offset: string };
}

const item = (id: number, bad?: Item['bad'], text = `v${id}`): Item => ({
  id,
  text,
  ...(bad === undefined ? {} : { bad }),
  origin: { topic: 'cdc.items', partition: 0, offset: String(100 + id) },
});
const good = (from: number, n: number) => Array.from({ length: n }, (_, i) => item(from + i));
const dirs: string[] = [];

async function run<T>(items: readonly T[], sink: SinkDefinition<T>) {
  const dir = mkdtempSync(join(tmpdir(), 'cdcflow-sinkrefuse-'));
  dirs.push(dir);
  const letters: DeadLetter[] = [];
  const writer: DeadLetterWriter = {
    open: () => Promise.resolve(),
    write: (l) => (letters.push(...l), Promise.resolve()),
    close: () => Promise.resolve(),
  };
  const env = StreamEnvironment.create({
    jobName: uniqueName('sinkrefuse'),
    restore: 'none',
    checkpoints: { dir: join(dir, 'chk'), intervalMs: 100 },
    state: { backend: 'memory', dir: join(dir, 'state') },
    restart: { maxAttempts: 2, initialDelayMs: 10 },
    deadLetters: { writer },
    log: () => undefined,
  });
  env
    .fromSource(fromCollection(items, { batchSize: 10 }))
    .sinkTo(sink)
    .uid('out');
  const outcome = await env.execute().then(
    (result) => ({ restarts: result.restarts as number | undefined, error: undefined as unknown }),
    (error: unknown) => ({ restarts: undefined, error }),
  );
  return { outcome, letters };
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('kafka sink: records the broker refuses (issue 10)', () => {
  const brokers = testEndpoints().kafkaBrokers.split(',');
  const kafka = new Kafka({ clientId: uniqueName('sinkrefuse'), brokers, logLevel: logLevel.NOTHING });
  let admin: Admin;
  const topics: string[] = [];
  const consumers: Consumer[] = [];

  beforeAll(async () => {
    admin = kafka.admin();
    await admin.connect();
  });
  afterAll(async () => {
    await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined)));
    await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
  });

  const sinkFor = (topic: string, onRefused?: 'fail' | 'skip') =>
    kafkaSink<Item>({
      brokers,
      topic,
      ...(onRefused === undefined ? {} : { onRefused }),
      serialize: (r) => {
        if (r.bad === 'serialize-throws') throw new TypeError(`cannot serialise item ${r.id}`);
        return {
          key: r.bad === 'key-not-bytes' ? ({ id: r.id } as unknown as string) : String(r.id),
          value: r.bad === 'too-large' ? 'x'.repeat(50_000) : r.text,
        };
      },
    });

  async function topicWithLimit(): Promise<string> {
    const topic = uniqueName('refuse-out');
    topics.push(topic);
    await admin.createTopics({
      topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '20000' }] }],
      waitForLeaders: true,
    });
    return topic;
  }

  it('dead-letters a record over max.message.bytes and records it cannot serialise; the rest of the transaction commits once', async () => {
    const topic = await topicWithLimit();
    // 60 records of 400 bytes: 24 KB, more than one record batch may hold; sends are split under the limit.
    const items = [
      ...good(1, 20),
      item(1001, 'too-large'),
      ...good(21, 20),
      item(1002, 'serialize-throws'),
      item(1003, 'key-not-bytes'),
      ...good(41, 20).map((i) => ({ ...i, text: `${i.text}:${'y'.repeat(400)}` })),
      item(61),
    ];
    const { outcome, letters } = await run(items, sinkFor(topic));
    expect(outcome.error).toBeUndefined();
    expect(outcome.restarts).toBe(0);
    expect(letters.map((l) => [l.stage, l.errorKind, l.offset])).toEqual([
      ['out', 'sink-refused', '1101'],
      ['out', 'sink-refused', '1102'],
      ['out', 'sink-refused', '1103'],
    ]);
    expect(letters[0]?.reason).toMatch(/over max\.message\.bytes of topic .* \(20000\)/);
    expect(letters[1]?.reason).toMatch(/serialize threw: TypeError: cannot serialise item 1002/);
    expect(letters[2]?.reason).toMatch(/the message key is object/);
    const values = await readValuesUntil(kafka, topic, 'v61', { track: (c) => consumers.push(c), timeoutMs: 30_000 });
    expect(values.map((v) => v.split(':')[0]).sort()).toEqual(
      good(1, 61)
        .map((i) => i.text)
        .sort(),
    );
  }, 90_000);

  it("with onRefused: 'fail' the job stops naming the record instead of restarting", async () => {
    const topic = await topicWithLimit();
    const { outcome } = await run([...good(1, 3), item(1001, 'too-large')], sinkFor(topic, 'fail'));
    expect((outcome.error as Error | undefined)?.message).toMatch(
      /out: the record at cdc\.items\/0@1101 .*failed \(sink-refused\)/,
    );
  }, 60_000);
});

describe('redis sink: writes Redis refuses (issue 10)', () => {
  const redis = new Redis(testEndpoints().redisUrl);
  const prefixes: string[] = [];

  afterAll(async () => {
    for (const prefix of prefixes) {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
    }
    redis.disconnect();
  });

  it('dead-letters a toWrite that throws, a ttl ≤ 0, a value over maxValueBytes and a key in the bookkeeping namespace; the rest is applied once', async () => {
    const prefix = uniqueName('refuse');
    prefixes.push(prefix);
    const sink = redisSink<Item>({
      prefix,
      url: testEndpoints().redisUrl,
      maxValueBytes: 1024,
      toWrite: (r) => ({
        key: r.bad === 'key-not-bytes' ? `__cdcflow:${r.id}` : String(r.id),
        value:
          r.bad === 'bigint' ? JSON.stringify({ id: BigInt(r.id) }) : r.bad === 'too-large' ? 'x'.repeat(2000) : r.text,
        ...(r.bad === 'ttl' ? { ttl: -1 } : {}),
      }),
    });
    const { outcome, letters } = await run(
      [
        ...good(1, 15),
        item(1001, 'bigint'),
        item(1002, 'ttl'),
        item(1003, 'too-large'),
        item(1004, 'key-not-bytes'),
        ...good(16, 15),
      ],
      sink,
    );
    expect(outcome.error).toBeUndefined();
    expect(outcome.restarts).toBe(0);
    expect(letters.map((l) => [l.stage, l.errorKind, l.offset])).toEqual([
      ['out', 'sink-refused', '1101'],
      ['out', 'sink-refused', '1102'],
      ['out', 'sink-refused', '1103'],
      ['out', 'sink-refused', '1104'],
    ]);
    expect(letters.map((l) => l.reason)).toEqual([
      expect.stringMatching(/toWrite threw: TypeError: .*BigInt/),
      expect.stringMatching(/ttl must be > 0 seconds, got -1/),
      expect.stringMatching(/value of key 1003 \(2002 bytes\) is over the limit of 1024 bytes/),
      expect.stringMatching(/bookkeeping namespace/),
    ]);
    const keys = (await redis.keys(`${prefix}:*`)).filter((k) => !k.includes('__cdcflow')).sort();
    expect(keys).toEqual(
      good(1, 30)
        .map((i) => `${prefix}:${i.id}`)
        .sort(),
    );
    expect(await redis.get(`${prefix}:30`)).toBe('v30');
  }, 60_000);
});
