/**
 * Issue 11, Kafka: a start with no checkpoint that finds open transactions on this job's Kafka
 * transactional ids refuses to start (before, the Kafka sink was not checked: its restore fenced
 * the ids, aborting transactions a checkpoint under another folder may have recorded — records
 * lost). `discardSinkTransactions` aborts them (InitProducerId on the same ids) and runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { InternalClient } from '../../operators/sinks/kafka/kafkajs-internals.ts';
import { kafkaSink } from '../../operators/sinks/kafka/kafka-sink.ts';
import { listTransactions } from '../../operators/sinks/kafka/list-transactions.ts';
import { fromCollection, type StreamEnvironment } from '../../runtime/index.ts';
import { expectFreshStartRefused, failureOf, freshStartEnvironment } from '../support/fresh-start.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';

const brokers = testEndpoints().kafkaBrokers.split(',');
const jobName = uniqueName('fresh-guard-kafka');
const topic = uniqueName('fresh-guard-kafka');
const work = mkdtempSync(join(tmpdir(), 'cdcflow-fresh-guard-kafka-'));
const kafka = new Kafka({ brokers: [...brokers], clientId: 'fresh-guard-kafka-test', logLevel: logLevel.NOTHING });

/** What a run of this job under another checkpoint folder left: subtask 1's slot 0 transaction, flushed, never committed. */
async function leaveOtherRunsTransaction(): Promise<string> {
  const id = `${jobName}-kf-1-0`;
  const producer = kafka.producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const txn = await producer.transaction();
  await txn.send({ topic, messages: [{ key: 'x', value: 'from-another-folder' }] });
  await producer.disconnect();
  return id;
}

async function openTransactionsOfJob(): Promise<string[]> {
  const client = new InternalClient({
    connection: { brokers },
    clientId: 'fresh-guard-kafka-list',
    transactionTimeoutMs: 60_000,
  });
  try {
    await client.connect();
    return ((await listTransactions(client.cluster, ['Ongoing'])) ?? [])
      .map((t) => t.transactionalId)
      .filter((id) => id.startsWith(`${jobName}-`));
  } finally {
    await client.disconnect();
  }
}

function job(dir: string, discardSinkTransactions: boolean): StreamEnvironment {
  const env = freshStartEnvironment(jobName, dir, { discardSinkTransactions, maxAttempts: 1 });
  env
    .fromSource(fromCollection<number>([1, 2, 3]))
    .sinkTo(kafkaSink({ brokers, topic, serialize: (n: number) => ({ key: String(n), value: String(n) }) }))
    .uid('kf');
  return env;
}

afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
  rmSync(work, { recursive: true, force: true });
});

describe('a start with no checkpoint over open Kafka transactions of this job', () => {
  it('refuses to abort them, names them and the ways out', async () => {
    const id = await leaveOtherRunsTransaction();
    expect(await openTransactionsOfJob()).toEqual([id]);
    expectFreshStartRefused(await failureOf(job(join(work, 'elsewhere'), false)), [`kafka open transaction '${id}'`]);
    expect(await openTransactionsOfJob()).toEqual([id]);
  }, 60_000);

  it('with discardSinkTransactions aborts them and runs', async () => {
    const result = await job(join(work, 'elsewhere'), true).execute();
    expect(result.state).toBe('finished');
    expect(await openTransactionsOfJob()).toEqual([]);
    const consumer = kafka.consumer({ groupId: uniqueName('fresh-guard-kafka'), readUncommitted: false });
    const seen: string[] = [];
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({ eachMessage: async ({ message }) => void seen.push(String(message.value)) });
      const until = Date.now() + 15_000;
      while (seen.length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    } finally {
      await consumer.disconnect();
    }
    expect(seen.sort()).toEqual(['1', '2', '3']);
  }, 60_000);
});
