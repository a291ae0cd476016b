/** A record schema in Avro's JSON form (structurally the registry client's `RawAvroSchema`). */
export interface RawAvroSchema {
  readonly type: 'record';
  readonly name: string;
  readonly namespace?: string;
  readonly fields: unknown[];
}

/**
 * The orders value schema as Debezium's Avro converter registers it (simplified: no
 * `connect.*` annotations), with `decimal.handling.mode=string` and ZonedTimestamp strings, so a
 * decoded Avro value has exactly the shape of the JSON value.
 */
const nullable = (type: unknown): unknown => ['null', type];
const zonedTimestamp = { type: 'string', 'connect.name': 'io.debezium.time.ZonedTimestamp' };

const VALUE_FIELDS_V1 = [
  { name: 'id', type: 'long' },
  { name: 'customer_id', type: nullable('long'), default: null },
  { name: 'status', type: nullable('string'), default: null },
  { name: 'amount', type: nullable('string'), default: null },
  { name: 'currency', type: nullable('string'), default: null },
  { name: 'shipping_address', type: nullable('string'), default: null },
  { name: 'notes', type: nullable('string'), default: null },
  { name: 'created_at', type: nullable(zonedTimestamp), default: null },
  { name: 'updated_at', type: nullable(zonedTimestamp), default: null },
];

/** v2 adds one nullable column with a default: a backward-compatible evolution. */
const VALUE_FIELDS_V2 = [...VALUE_FIELDS_V1, { name: 'discount_code', type: nullable('string'), default: null }];

// ts_ns (nanoseconds since 1970, above 2^53) is left out: a JS number cannot hold it exactly.
const SOURCE = {
  type: 'record',
  name: 'Source',
  namespace: 'io.debezium.connector.postgresql',
  fields: [
    { name: 'version', type: 'string' },
    { name: 'connector', type: 'string' },
    { name: 'name', type: 'string' },
    { name: 'ts_ms', type: 'long' },
    { name: 'snapshot', type: ['string', 'null'], default: 'false' },
    { name: 'db', type: 'string' },
    { name: 'sequence', type: nullable('string'), default: null },
    { name: 'ts_us', type: nullable('long'), default: null },
    { name: 'schema', type: 'string' },
    { name: 'table', type: 'string' },
    { name: 'txId', type: nullable('long'), default: null },
    { name: 'lsn', type: nullable('long'), default: null },
    { name: 'xmin', type: nullable('long'), default: null },
    { name: 'origin', type: nullable('string'), default: null },
    { name: 'origin_lsn', type: nullable('long'), default: null },
  ],
};

const TRANSACTION = {
  type: 'record',
  name: 'block',
  namespace: 'event',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'total_order', type: 'long' },
    { name: 'data_collection_order', type: 'long' },
  ],
};

function envelope(valueFields: readonly unknown[]): RawAvroSchema {
  return {
    type: 'record',
    name: 'Envelope',
    namespace: 'cdc.ecommerce.orders',
    fields: [
      { name: 'before', type: nullable({ type: 'record', name: 'Value', fields: valueFields }), default: null },
      { name: 'after', type: nullable('Value'), default: null },
      { name: 'source', type: SOURCE },
      { name: 'op', type: 'string' },
      { name: 'ts_ms', type: nullable('long'), default: null },
      { name: 'ts_us', type: nullable('long'), default: null },
      { name: 'transaction', type: nullable(TRANSACTION), default: null },
    ],
  };
}

export const ORDERS_VALUE_SCHEMA_V1: RawAvroSchema = envelope(VALUE_FIELDS_V1);
export const ORDERS_VALUE_SCHEMA_V2: RawAvroSchema = envelope(VALUE_FIELDS_V2);

/** The key schema (`{"id": 42}`), for a connector that writes Avro keys too. */
export const ORDERS_KEY_SCHEMA: RawAvroSchema = {
  type: 'record',
  name: 'Key',
  namespace: 'cdc.ecommerce.orders',
  fields: [{ name: 'id', type: 'long' }],
};
