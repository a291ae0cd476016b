/**
 * Defect 9 (issue 10): Kafka over TLS and over SASL/SCRAM, end to end. A dedicated broker (never
 * the shared one on 19092) gets an SSL listener that requires client certificates and a
 * SASL_PLAINTEXT listener with SCRAM-SHA-256; certificates are made now with openssl/keytool and
 * the SCRAM user with kafka's ConfigCommand (kafka-configs). The projection job reads a Debezium
 * topic and writes the table to a transactional Kafka sink, every client over the secured
 * listener; the output read back over it equals the oracle. Before, no client could be given TLS
 * or SASL: the same job against these listeners could not connect at all.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaClientConfig, type KafkaConnection } from '../../operators/kafka-connection.ts';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import type { OrderRow } from '../../scripts/workload/orders-model.ts';
import { projectionOracle } from '../../scripts/workload/oracle.ts';
import { produceWorkload } from '../../scripts/workload/producer.ts';
import { debeziumSource, kafkaSink, tableChangeMessage } from '../../runtime/index.ts';
import { DedicatedKafka, type BrokerSecurity } from '../support/dedicated-kafka.ts';
import { uniqueName } from '../support/endpoints.ts';
import { readTopic, testJob, type TestJob } from '../support/source-jobs.ts';

const WORKLOAD = { keys: 40, events: 400, seed: 23, partitions: 2 };
let broker: DedicatedKafka & { readonly security: BrokerSecurity };
let failed = false;
const jobs: TestJob[] = [];
const USER = 'cdcflow-test-job';

beforeAll(async () => {
  broker = await DedicatedKafka.createSecured();
  await broker.start();
  await broker.addScramUser(USER, 'scram-secret-of-the-test');
}, 180_000);

afterAll(async () => {
  jobs.forEach((j) => j.cleanup());
  await broker?.destroy(failed);
});

/** The projection over `connection`: Debezium topic → keyBy id → upsert → transactional Kafka sink, all through the one connection. */
async function projectThrough(connection: KafkaConnection): Promise<void> {
  const { brokers, ssl, sasl } = connection;
  const security = { ...(ssl === undefined ? {} : { ssl }), ...(sasl === undefined ? {} : { sasl }) };
  const input = uniqueName('secure-in');
  const output = uniqueName('secure-out');
  await produceWorkload({ brokers, ...security, topic: input, workload: WORKLOAD });
  const job = testJob(uniqueName('secure-job'));
  jobs.push(job);
  job.env
    .fromSource(
      debeziumSource<OrderRow>({
        topics: [input],
        groupId: uniqueName('secure-group'),
        brokers,
        ...security,
        bounded: 'latest',
        deadLetterTopic: `${input}.dlq`,
      }),
    )
    .keyBy((event) => event.key?.['id'] as number)
    .upsert()
    .sinkTo(kafkaSink({ brokers, ...security, topic: output, serialize: tableChangeMessage() }));
  try {
    const result = await job.env.execute();
    expect(result.restarts).toBe(0);
  } catch (error) {
    failed = true;
    throw new Error(`${String(error)}\n${job.log.join('\n')}`);
  }
  const oracle = projectionOracle(generateWorkload(WORKLOAD));
  const kafka = new Kafka(
    kafkaClientConfig(connection, { clientId: uniqueName('secure-reader'), logLevel: logLevel.NOTHING }),
  );
  const changes = await readTopic(kafka, output, 1, { timeoutMs: 30_000, lingerMs: 2_000 });
  const table = new Map<number, unknown>();
  for (const { message } of changes.sort((a, b) => Number(a.offset) - Number(b.offset))) {
    const key = JSON.parse((message.key as Buffer).toString()) as number;
    if (message.value === null) table.delete(key);
    else table.set(key, JSON.parse(message.value.toString()));
  }
  expect(table).toEqual(new Map([...oracle].map(([k, row]) => [k, JSON.parse(JSON.stringify(row))])));
}

describe('Kafka security (dedicated broker)', () => {
  it('TLS with client certificates: source → upsert → Kafka sink, all over SSL', async () => {
    const { tls, sslBrokers } = broker.security;
    await projectThrough({
      brokers: [sslBrokers],
      ssl: { caFile: tls.caFile, certFile: tls.clientCertFile, keyFile: tls.clientKeyFile },
    });
  }, 120_000);

  it('SASL/SCRAM-SHA-256 with the password from a file: source → upsert → Kafka sink, all over SASL', async () => {
    const passwordFile = join(broker.dataDir, 'scram-password');
    writeFileSync(passwordFile, 'scram-secret-of-the-test\n', { mode: 0o600 });
    await projectThrough({
      brokers: [broker.security.saslBrokers],
      sasl: { mechanism: 'scram-sha-256', username: USER, password: { file: passwordFile } },
    });
  }, 120_000);

  it('a wrong SCRAM password fails the job at once (not retriable) instead of a restart loop', async () => {
    const job = testJob(uniqueName('secure-bad-password'), 500, { maxAttempts: 5, initialDelayMs: 10 });
    jobs.push(job);
    const input = uniqueName('secure-bad-in');
    job.env
      .fromSource(
        debeziumSource<OrderRow>({
          topics: [input],
          groupId: uniqueName('secure-bad'),
          brokers: [broker.security.saslBrokers],
          sasl: { mechanism: 'scram-sha-256', username: USER, password: 'wrong' },
          bounded: 'latest',
        }),
      )
      .sinkTo({ name: 'discard', createOperator: () => ({ processBatch() {} }) });
    await expect(job.env.execute()).rejects.toThrow(/SASL|authentication/i);
    expect(job.env.health()).toMatchObject({
      status: 'failed',
      restarts: 0,
      lastError: { retriable: false, domain: 'user' },
    });
  }, 120_000);
});
