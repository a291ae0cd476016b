import type { RawMessage } from '../../../../../operators/sources/kafka/raw-message.ts';

/** A raw message as the consumer loop would hand it over; strings/objects are JSON-encoded. */
export function message(value: unknown, key: unknown = { id: 42 }, topic = 'cdc.ecommerce.orders'): RawMessage {
  const bytes = (v: unknown): Buffer | null =>
    v === null ? null : Buffer.isBuffer(v) ? v : Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
  return { topic, partition: 3, offset: '1017', key: bytes(key), value: bytes(value), timestampMs: 1_700_000_000_123 };
}

export const SOURCE = {
  version: '2.7.3.Final',
  connector: 'postgresql',
  name: 'ecommerce',
  ts_ms: 1_700_000_000_000,
  snapshot: 'false',
  db: 'ecommerce',
  sequence: '["100","200"]',
  schema: 'public',
  table: 'orders',
  txId: 771,
  lsn: 6_093_757_537,
  xmin: null,
};

export const ROW = { id: 42, status: 'paid', amount: '99.99' };

export function envelope(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    before: null,
    after: ROW,
    source: SOURCE,
    op: 'c',
    ts_ms: 1_700_000_000_050,
    transaction: null,
    ...overrides,
  };
}
