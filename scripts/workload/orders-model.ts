import { Prng } from './prng.ts';

/** Topic, subject and Debezium identity of the reference workload (WORKLOAD.md). */
export const ORDERS_TOPIC = 'cdc.ecommerce.orders';
export const ORDERS_VALUE_SUBJECT = 'cdc.ecommerce.orders-value';
export const ORDER_STATUSES = ['pending', 'paid', 'shipped', 'delivered'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** A row of `public.orders` as Debezium's JSON converter writes it (decimal as string, ISO times). */
export interface OrderRow {
  id: number;
  customer_id: number;
  status: OrderStatus;
  amount: string;
  currency: string;
  shipping_address: string;
  notes: string;
  created_at: string;
  updated_at: string;
}

/** `source` as Debezium 3.6's Postgres connector writes it (field order included). */
export interface OrderSource {
  version: string;
  connector: 'postgresql';
  name: 'ecommerce';
  ts_ms: number;
  snapshot: 'first' | 'true' | 'last' | 'false';
  db: 'ecommerce';
  /** `["<last commit LSN>","<change LSN>"]`: commit order (see state/change-position.ts). */
  sequence: string;
  ts_us: number;
  ts_ns: number;
  schema: 'public';
  table: 'orders';
  txId: number;
  /** The change record's own LSN: not commit order. */
  lsn: number;
  xmin: null;
  origin: null;
  origin_lsn: null;
}

/** The Debezium value of one change; `JSON.stringify` of it is exactly the message value. */
export interface OrderEnvelope {
  before: OrderRow | null;
  after: OrderRow | null;
  source: OrderSource;
  /** Debezium 3.6 writes `transaction` before `op`; null without `provide.transaction.metadata`. */
  transaction: null;
  op: 'r' | 'c' | 'u' | 'd';
  ts_ms: number;
  ts_us: number;
  ts_ns: number;
}

const CURRENCIES = ['EUR', 'USD', 'GBP'] as const;
const WORDS = (
  'customer asked for gift wrapping please leave the parcel at the front door call before ' +
  'delivery fragile items inside handle with care invoice to company address express shipping requested ' +
  'second floor ring twice do not bend contains glassware weekend delivery preferred'
).split(' ');
const STREETS = ['Main Street', 'Rue de la Paix', 'Baker Street', 'Kurfürstendamm', 'Calle Mayor', 'Via Roma'];
const CITIES = ['Springfield 12345', 'Paris 75002', 'London NW1 6XE', 'Berlin 10719', 'Madrid 28013', 'Roma 00184'];

/**
 * Text pools are built from a fixed seed, not the workload's: they are scenery, and sharing them
 * keeps every seed's events the same size (~1.3 KB for an update with both images).
 */
function buildPool(size: number, make: (prng: Prng, i: number) => string): readonly string[] {
  const prng = new Prng(0xc0ffee);
  return Array.from({ length: size }, (_, i) => make(prng, i));
}

const NOTES = buildPool(64, (prng) => {
  let text = '';
  while (text.length < 290) text += (text === '' ? '' : ' ') + WORDS[prng.int(WORDS.length)];
  return text.slice(0, 300);
});
const ADDRESSES = buildPool(
  64,
  (prng) =>
    `${prng.range(1, 999)} ${STREETS[prng.int(STREETS.length)]}, apartment ${prng.range(1, 90)}, ${CITIES[prng.int(CITIES.length)]}`,
);

/** Per-order facts that never change; derived from the id so the generator stores none of them. */
export function notesOf(id: number): string {
  return NOTES[(Math.imul(id, 0x9e3779b1) >>> 0) % NOTES.length] ?? '';
}
export function addressOf(id: number): string {
  return ADDRESSES[(Math.imul(id, 0x85ebca6b) >>> 0) % ADDRESSES.length] ?? '';
}
export function currencyOf(id: number): string {
  return CURRENCIES[id % CURRENCIES.length] ?? 'EUR';
}
export function customerOf(id: number, customers: number): number {
  return 1 + ((Math.imul(id, 0x2c1b3c6d) >>> 0) % customers);
}

/** Cents as Debezium's `decimal.handling.mode=string` writes numeric(12,2): `"99.90"`. */
export function centsToDecimal(cents: number | bigint): string {
  const big = BigInt(cents);
  const sign = big < 0n ? '-' : '';
  const abs = big < 0n ? -big : big;
  return `${sign}${abs / 100n}.${(abs % 100n).toString().padStart(2, '0')}`;
}

const DECIMAL = /^(-?)(\d+)(?:\.(\d{1,2}))?$/;

/** `"99.9"` → 9990n. Exact (no floats); throws on anything numeric(12,2) cannot hold. */
export function decimalToCents(text: string): bigint {
  const match = DECIMAL.exec(text);
  if (match === null) throw new Error(`"${text}" is not a decimal with at most 2 fraction digits`);
  const cents = BigInt(match[2] ?? '0') * 100n + BigInt((match[3] ?? '').padEnd(2, '0'));
  return match[1] === '-' ? -cents : cents;
}
