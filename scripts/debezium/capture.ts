/**
 * Captures what a real Debezium Postgres connector writes for the SQL workload, as JSON lines
 * (`{"partition","offset","key","value"}`, key/value as the connector's JSON text or null), so the
 * generator (scripts/workload) can be checked against real output.
 *   npx tsx scripts/debezium/capture.ts --out /tmp/real-orders.jsonl [--changes 20000] [--rate 2000]
 *     [--seeded 2000] [--partitions 6] [--identity full|default] [--decimals string|precise|double]
 *     [--schemas] [--transactions] [--connector-first]
 * By default the connector is registered while the writes run (its snapshot under load), as users
 * start one. Needs `npm run stack -- up debezium`; removes its connector, slot, publication, table
 * and topics at the end.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { endpointsFromEnv } from '../stack/endpoints.ts';
import { createOrdersTable, ensureSourceDatabase, removeOrdersConnector, sourceDatabaseUrl, startOrdersConnector, type DecimalHandling, type ReplicaIdentity } from './orders-source.ts';
import { seedOrders, SqlWorkload } from './sql-workload.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    changes: { type: 'string', default: '20000' },
    rate: { type: 'string', default: '2000' },
    seeded: { type: 'string', default: '2000' },
    partitions: { type: 'string', default: '6' },
    identity: { type: 'string', default: 'full' },
    decimals: { type: 'string', default: 'string' },
    schemas: { type: 'boolean', default: false },
    transactions: { type: 'boolean', default: false },
    'connector-first': { type: 'boolean', default: false },
  },
});
if (values.out === undefined) {
  console.error('usage: npx tsx scripts/debezium/capture.ts --out <file.jsonl> [--changes N] [--rate N] [--seeded N] [--partitions N] [--identity full|default] [--decimals string|precise|double] [--schemas] [--transactions] [--connector-first]');
  process.exit(2);
}
const END = 1_999_999_999;
const endpoints = endpointsFromEnv();
const url = sourceDatabaseUrl();
const run = randomBytes(3).toString('hex');
const table = `cdcflow_capture_${run}`;
const seeded = Number(values.seeded);
const say = (line: string) => console.log(`[capture] ${line}`);

await ensureSourceDatabase(url);
await createOrdersTable(url, table, values.identity as ReplicaIdentity);
await seedOrders(url, table, seeded, 5);
const connectorOptions = {
  connectUrl: endpoints.kafkaConnectUrl,
  databaseUrl: url,
  table,
  name: `cdcflow-capture-${run}`,
  decimalHandling: values.decimals as DecimalHandling,
  schemasEnable: values.schemas,
  transactionMetadata: values.transactions,
  partitions: Number(values.partitions),
};
let names = values['connector-first'] ? await startOrdersConnector(connectorOptions) : undefined;
try {
  const load = SqlWorkload.start({ databaseUrl: url, table, seed: 5, seededRows: seeded, maxChanges: Number(values.changes), maxDurationMs: 120_000, ratePerSecond: Number(values.rate) });
  if (names === undefined) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    names = await startOrdersConnector(connectorOptions);
  }
  const report = await load.done;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`INSERT INTO ${table} (id, status) VALUES ($1, 'end-marker')`, [END]);
  await client.end();
  const kafka = new Kafka({ clientId: 'cdcflow-capture', brokers: endpoints.kafkaBrokers.split(','), logLevel: logLevel.NOTHING });
  const out = createWriteStream(values.out);
  const topics = values.transactions ? [names.topic, names.transactionTopic] : [names.topic];
  const consumer = kafka.consumer({ groupId: `cdcflow-capture-${run}` });
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  let written = 0;
  let lastAt = Date.now();
  let seenEnd = false;
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      const key = message.key?.toString() ?? null;
      out.write(`${JSON.stringify({ topic: topic === names?.topic ? 'data' : 'transaction', partition, offset: message.offset, key, value: message.value?.toString() ?? null })}\n`);
      written += 1;
      lastAt = Date.now();
      if (key !== null && key.includes(`${END}`)) seenEnd = true;
    },
  });
  // Other partitions may still be draining after the marker's: stop after 3 s without a message.
  const deadline = Date.now() + 180_000;
  while ((!seenEnd || Date.now() - lastAt < 3000) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
  if (!seenEnd) say('the end marker never arrived within 180 s: the capture is incomplete (is the connector running?)');
  await consumer.disconnect();
  out.end();
  say(`workload ${report.changes} changed rows; wrote ${written} messages to ${values.out} (topic ${names.topic}${values.transactions ? ` + ${names.transactionTopic}` : ''})`);
} finally {
  if (names !== undefined) await removeOrdersConnector(endpoints.kafkaConnectUrl, url, names);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP TABLE IF EXISTS ${table}`);
  await client.end();
  const admin = new Kafka({ clientId: 'cdcflow-capture', brokers: endpoints.kafkaBrokers.split(','), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  if (names !== undefined) {
    const existing = new Set(await admin.listTopics());
    const ours = [names.topic, names.transactionTopic].filter((t) => existing.has(t));
    if (ours.length > 0) await admin.deleteTopics({ topics: ours });
  }
  await admin.deleteGroups([`cdcflow-capture-${run}`]).catch(() => undefined);
  await admin.disconnect();
}
