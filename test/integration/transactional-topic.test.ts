/**
 * A bounded Debezium source over a topic written transactionally (as cdcflow's own Kafka sink or
 * an exactly-once connector writes it): it sees committed events only, and it finishes even when
 * the topic ends in transaction markers or aborted messages, which kafkajs never hands to
 * `eachBatch`. One record batch per fetch makes the markers arrive in fetches of their own.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { KafkajsFetcher } from '../../operators/sources/kafka/kafkajs-fetcher.ts';
import { collectSink, debeziumSource, type ChangeEvent } from '../../runtime/index.ts';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { createTopic, testJob, testKafka, type TestJob } from '../support/source-jobs.ts';

describe('Debezium source: transactional topics', () => {
  const jobs: TestJob[] = [];
  afterAll(() => jobs.forEach((j) => j.cleanup()));

  it('reads committed events only and ends although the topic ends in markers and aborted messages', async () => {
    const kafka = testKafka(uniqueName('txn-source'));
    const topic = uniqueName('txn-orders');
    await createTopic(kafka, topic, 1);
    const records = [...generateWorkload({ seed: 5, keys: 20, events: 60, partitions: 1 })];
    const messages = records.map((r) => ({ key: r.key, value: r.value }));
    const producer = kafka.producer({
      transactionalId: uniqueName('txn-producer'),
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    try {
      for (const [part, commit] of [
        [messages.slice(0, 30), true],
        [messages.slice(0, 5), false],
        [messages.slice(30), true],
        [messages.slice(0, 5), false],
      ] as const) {
        const txn = await producer.transaction();
        await txn.send({ topic, messages: [...part] });
        await (commit ? txn.commit() : txn.abort());
      }
    } finally {
      await producer.disconnect();
    }

    const job = testJob(uniqueName('txn-job'));
    jobs.push(job);
    const groupId = uniqueName('txn-group');
    // One record batch per fetch: every marker and the aborted batches come in fetches of their own.
    const fetcher = new KafkajsFetcher({
      brokers: testEndpoints().kafkaBrokers.split(','),
      topics: [topic],
      groupId,
      clientId: uniqueName('txn-client'),
      maxBytesPerPartition: 1,
    });
    const events: ChangeEvent<unknown>[] = [];
    job.env
      .fromSource(debeziumSource({ topics: [topic], groupId, fetcher, bounded: 'latest' }), { uid: 'orders-source' })
      .sinkTo(collectSink(events));
    // Without the fix the job never ends: stop it so the failure is an assertion, not a timeout.
    let stoppedByWatchdog = false;
    const watchdog = setTimeout(() => {
      stoppedByWatchdog = true;
      void job.env.stop();
    }, 30_000);
    const result = await job.env.execute().finally(() => clearTimeout(watchdog));

    expect(stoppedByWatchdog, 'the bounded job did not end by itself').toBe(false);
    expect(result.restarts, job.log.join('\n')).toBe(0);
    expect(events.map((e) => e.source.lsn)).toEqual(
      records.filter((r) => r.event !== null).map((r) => r.event?.source.lsn),
    );
  });

  it('drops aborted transactions that ended in another order than they began (kafkajs patch)', async () => {
    const kafka = testKafka(uniqueName('txn-interleaved'));
    const topic = uniqueName('txn-interleaved');
    await createTopic(kafka, topic, 1);
    const records = [...generateWorkload({ seed: 7, keys: 10, events: 30, partitions: 1 })].filter(
      (r) => r.event !== null,
    );
    const messages = records.map((r) => ({ key: r.key, value: r.value }));
    const producers = await Promise.all(
      ['a', 'b', 'c'].map(async (name) => {
        const producer = kafka.producer({
          transactionalId: uniqueName(`txn-${name}`),
          idempotent: true,
          maxInFlightRequests: 1,
        });
        await producer.connect();
        return producer;
      }),
    );
    try {
      // A begins, B begins, C begins; B commits, C aborts, A aborts: the broker lists C's abort before A's.
      const [a, b, c] = await Promise.all(producers.map((p) => p.transaction()));
      await a?.send({ topic, messages: messages.slice(0, 10) });
      await b?.send({ topic, messages: messages.slice(10, 20) });
      await c?.send({ topic, messages: messages.slice(20) });
      await b?.commit();
      await c?.abort();
      await a?.abort();
    } finally {
      await Promise.all(producers.map((p) => p.disconnect()));
    }
    const job = testJob(uniqueName('txn-interleaved-job'));
    jobs.push(job);
    const events: ChangeEvent<unknown>[] = [];
    job.env
      .fromSource(
        debeziumSource({ topics: [topic], groupId: uniqueName('txn-interleaved-group'), bounded: 'latest' }),
        { uid: 'orders-source' },
      )
      .sinkTo(collectSink(events));
    const result = await job.env.execute();
    expect(result.restarts, job.log.join('\n')).toBe(0);
    expect(events.map((e) => e.source.lsn)).toEqual(records.slice(10, 20).map((r) => r.event?.source.lsn));
  });
});
