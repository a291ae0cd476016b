/**
 * A Kafka fetcher stopped while kafkajs is restarting its crashed consumer must stay stopped.
 * kafkajs restarts a consumer after a retriable crash (its broker went away) from a timer, and
 * while that restart is under way `consumer.disconnect()` finds no running consumer and returns at
 * once; the restart then fails, crashes again and schedules the next one. Without the fetcher's
 * guard that consumer comes back when the broker does: a zombie of a failed job attempt that
 * joins the group, fetches into the closed reader's buffer, blocks there and heartbeats forever
 * ("The coordinator is not aware of this member"), keeping the job process from exiting
 * (test/chaos/kafka-broker-restart.test.ts timed out like that).
 *
 * A dedicated broker (test/support/dedicated-kafka.ts) is killed under a running fetcher; once
 * kafkajs reports a crash it restarts from, the fetcher is stopped while the broker is still down;
 * then the broker comes back. Every crash after the stop must be one kafkajs does not restart
 * from, nothing may be delivered after the stop, and the group must end up without members.
 */
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkajsFetcher } from '../../operators/sources/kafka/kafkajs-fetcher.ts';
import { DedicatedKafka } from '../support/dedicated-kafka.ts';
import { uniqueName } from '../support/endpoints.ts';

const say = (line: string) => console.log(`[fetcher stop] ${line}`);
let broker: DedicatedKafka | undefined;
let fetcher: KafkajsFetcher | undefined;
let passed = false;

afterAll(async () => {
  await fetcher?.stop().catch(() => undefined);
  await broker?.destroy(!passed);
});

/** Waits (bounded) until `condition` holds; false if it never did within `timeoutMs`. */
async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return condition();
}

describe('KafkajsFetcher.stop during a kafkajs consumer restart', () => {
  it('keeps the consumer stopped when the broker comes back', async () => {
    broker = await DedicatedKafka.create(say);
    await broker.start();
    const topic = uniqueName('fetcher-stop-topic');
    const groupId = uniqueName('fetcher-stop-group');
    const kafka = new Kafka({ clientId: 'fetcher-stop-test', brokers: [broker.brokers], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })) });
    await producer.disconnect();
    await admin.disconnect();

    fetcher = new KafkajsFetcher({
      brokers: [broker.brokers],
      topics: [topic],
      groupId,
      clientId: 'fetcher-stop-test',
      sessionTimeoutMs: 6000,
    });
    // The fetcher's kafkajs consumer, to watch its crash and restart decisions.
    const consumer = (fetcher as unknown as { consumer: Consumer }).consumer;
    const crashes: { restart: boolean; afterStop: boolean }[] = [];
    let stopped = false;
    consumer.on(consumer.events.CRASH, ({ payload }) => crashes.push({ restart: payload.restart, afterStop: stopped }));
    let delivered = 0;
    let deliveredAfterStop = 0;
    await fetcher.start((batch) => {
      delivered += batch.messages.length;
      if (stopped) deliveredAfterStop += batch.messages.length;
      return Promise.resolve();
    }, new Map());
    expect(await until(() => delivered >= 10, 60_000), 'the fetcher delivered the topic').toBe(true);

    await broker.kill('SIGKILL');
    expect(await until(() => crashes.some((c) => c.restart), 90_000), 'kafkajs crashed and restarts the consumer').toBe(
      true,
    );
    // kafkajs's restart (a timer of a few hundred ms, then a connect retried for seconds) is now
    // under way or about to be: stop in the middle of it, with the broker still down.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    stopped = true;
    await fetcher.stop();
    const crashesBeforeStop = crashes.length;
    // A restart already in flight fails against the dead broker: it must not schedule another.
    await until(() => crashes.length > crashesBeforeStop, 30_000);
    say(
      `${crashesBeforeStop} crashes before the stop (restarted: ${crashes.filter((c) => c.restart).length}), ${crashes.length - crashesBeforeStop} after`,
    );

    await broker.start();
    const check = kafka.admin();
    await check.connect();
    let state = '?';
    let members = -1;
    const empty = await until(async () => {
      const group = (await check.describeGroups([groupId]).catch(() => undefined))?.groups[0];
      state = group?.state ?? '?';
      members = group?.members.length ?? -1;
      return members === 0 && (state === 'Empty' || state === 'Dead');
    }, 60_000);
    // A zombie would rejoin within kafkajs's restart backoff after the broker is back: give it the time.
    const rejoined = await until(
      async () => ((await check.describeGroups([groupId]).catch(() => undefined))?.groups[0]?.members.length ?? 0) > 0,
      15_000,
    );
    await check.disconnect();
    say(
      `group ${state} with ${members} members after the broker came back; rejoined afterwards: ${rejoined}; delivered after stop: ${deliveredAfterStop}`,
    );
    expect(
      crashes.filter((c) => c.afterStop && c.restart),
      'crashes after stop that kafkajs restarts from',
    ).toEqual([]);
    expect(empty, `group ${state} with ${members} members`).toBe(true);
    expect(rejoined).toBe(false);
    expect(deliveredAfterStop).toBe(0);
    passed = true;
  });
});
