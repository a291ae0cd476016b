/**
 * Captures the unit-test fixtures in test/fixtures/debezium/ from the REAL connector (Debezium
 * 3.6.1.Final on the stack's Kafka Connect): NUMERIC columns under decimal.handling.mode
 * precise/string/double with schemas enabled and disabled, a TRUNCATE, and the transaction-metadata
 * topic. One connector at a time (replication slots are scarce), each removed with its slot and
 * publication afterwards.
 *   KAFKA_CONNECT_URL=http://127.0.0.1:18083 npx tsx scripts/capture-debezium-fixtures.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';

const connect = process.env['KAFKA_CONNECT_URL'] ?? 'http://127.0.0.1:18083';
const brokers = (process.env['KAFKA_BROKERS'] ?? '127.0.0.1:19092').split(',');
const sourceUrl = process.env['SOURCE_DATABASE_URL'] ?? 'postgres://cdcflow:cdcflow@127.0.0.1:15432/ecommerce';
const out = new URL('../test/fixtures/debezium/', import.meta.url).pathname;
const run = `dvfix${Date.now().toString(36)}`;
const table = `${run}_amounts`;

interface Variant {
  readonly name: string;
  readonly mode: 'precise' | 'string' | 'double';
  readonly schemas: boolean;
  readonly transactions: boolean;
}

const VARIANTS: readonly Variant[] = [
  { name: 'precise-schemas', mode: 'precise', schemas: true, transactions: true },
  { name: 'precise-no-schemas', mode: 'precise', schemas: false, transactions: true },
  { name: 'string-no-schemas', mode: 'string', schemas: false, transactions: false },
  { name: 'double-no-schemas', mode: 'double', schemas: false, transactions: false },
  { name: 'string-schemas', mode: 'string', schemas: true, transactions: false },
];

async function rest(method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${connect}${path}`, { method, headers: { 'Content-Type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await response.text();
  if (!response.ok && response.status !== 404) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text.length > 0 ? JSON.parse(text) : undefined;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function readTopic(topic: string, atLeast: number): Promise<{ key: string | null; value: string | null }[]> {
  const kafka = new Kafka({ brokers, clientId: run, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `${run}-${topic}` });
  const messages: { key: string | null; value: string | null }[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void messages.push({ key: message.key?.toString('utf8') ?? null, value: message.value?.toString('utf8') ?? null }) });
  try {
    await waitFor(`${atLeast} messages on ${topic}`, () => Promise.resolve(messages.length >= atLeast), 60_000);
    await new Promise((r) => setTimeout(r, 2_000));
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

async function topicExists(topic: string): Promise<boolean> {
  const admin = new Kafka({ brokers, clientId: run, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    return (await admin.listTopics()).includes(topic);
  } finally {
    await admin.disconnect();
  }
}

async function capture(db: pg.Client, variant: Variant, index: number): Promise<void> {
  const name = `${run}-${variant.name}`;
  const prefix = `${run}${index}`;
  const slot = `${run}_${index}`;
  const config = {
    'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
    'tasks.max': '1',
    'database.hostname': '127.0.0.1',
    'database.port': '15432',
    'database.user': 'cdcflow',
    'database.password': 'cdcflow',
    'database.dbname': 'ecommerce',
    'plugin.name': 'pgoutput',
    'topic.prefix': prefix,
    'table.include.list': `public.${table}`,
    'slot.name': slot,
    'publication.name': slot,
    'publication.autocreate.mode': 'filtered',
    'decimal.handling.mode': variant.mode,
    'skipped.operations': 'none',
    'provide.transaction.metadata': String(variant.transactions),
    'key.converter': 'org.apache.kafka.connect.json.JsonConverter',
    'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable': String(variant.schemas),
    'value.converter.schemas.enable': String(variant.schemas),
    'topic.creation.default.partitions': '1',
    'topic.creation.default.replication.factor': '1',
  };
  await db.query(`TRUNCATE ${table}`);
  await db.query(`INSERT INTO ${table} VALUES (1, 100.00, 1.5, 7), (2, -26588.24, -0.000001, -3)`);
  await rest('PUT', `/connectors/${name}/config`, config);
  try {
    const topic = `${prefix}.public.${table}`;
    await waitFor('the snapshot', () => topicExists(topic));
    await db.query('BEGIN');
    await db.query(`INSERT INTO ${table} VALUES (3, 26588.24, 123456789012345678901234.5, 0), (4, 0.07, NULL, NULL)`);
    await db.query(`UPDATE ${table} SET amount = -0.01 WHERE id = 1`);
    await db.query('COMMIT');
    await db.query(`INSERT INTO ${table} VALUES (5, 9999999999.99, 1e-20, 12345678901234567890)`);
    await db.query(`TRUNCATE ${table}`);
    await db.query(`INSERT INTO ${table} VALUES (6, -1.00, 2, 2)`);
    const changes = await readTopic(topic, 8);
    writeFileSync(`${out}${variant.name}.json`, `${JSON.stringify({ connector: { 'decimal.handling.mode': variant.mode, 'schemas.enable': variant.schemas, 'provide.transaction.metadata': variant.transactions }, topic, messages: changes }, null, 1)}\n`);
    console.log(`${variant.name}: ${changes.length} messages on ${topic}`);
    if (variant.transactions) {
      const transactions = await readTopic(`${prefix}.transaction`, 8);
      writeFileSync(`${out}${variant.name}-transaction-topic.json`, `${JSON.stringify({ topic: `${prefix}.transaction`, messages: transactions }, null, 1)}\n`);
      console.log(`${variant.name}: ${transactions.length} transaction markers`);
    }
  } finally {
    await rest('DELETE', `/connectors/${name}`);
    await waitFor('the slot to be released', async () => (await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active', [slot])).rowCount === 0, 30_000).catch(() => undefined);
    await db.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]).catch((e: unknown) => console.error(`drop slot ${slot}: ${String(e)}`));
    await db.query(`DROP PUBLICATION IF EXISTS ${slot}`);
  }
}

mkdirSync(out, { recursive: true });
const db = new pg.Client({ connectionString: sourceUrl });
await db.connect();
try {
  // amount: numeric(12,2) → Decimal with scale 2; ratio: numeric without scale → VariableScaleDecimal; big: numeric(30,0).
  await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, amount numeric(12,2), ratio numeric, big numeric(30,0))`);
  const only = process.argv[2];
  for (const [i, variant] of VARIANTS.entries()) if (only === undefined || variant.name === only) await capture(db, variant, i);
} finally {
  await db.query(`DROP TABLE IF EXISTS ${table}`);
  await db.end();
}
