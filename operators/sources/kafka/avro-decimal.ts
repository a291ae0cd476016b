/**
 * The Avro `decimal` logical type (Confluent's converter writes Debezium `precise` decimals as
 * `bytes` with `logicalType: decimal` and the column's `scale`) decoded by avsc straight into exact
 * decimal text (`"-26588.24"`). Without it avsc hands out the raw bytes, which no sink can use.
 */
import avro from 'avsc';
import type { Schema } from 'avsc';
import { formatUnscaled, unscaledFromBytes } from './decimal-bytes.ts';

class DecimalText extends avro.types.LogicalType {
  readonly #scale: number;

  constructor(schema: Schema, opts?: unknown) {
    super(schema, opts);
    const scale = (schema as { scale?: unknown }).scale ?? 0;
    // An unusable scale makes avsc fall back to the underlying bytes, which the envelope decoder
    // then refuses (it never guesses a scale).
    if (typeof scale !== 'number' || !Number.isSafeInteger(scale))
      throw new Error(`decimal logical type with scale ${JSON.stringify(scale)}`);
    this.#scale = scale;
  }

  protected override _fromValue(value: unknown): unknown {
    return value instanceof Uint8Array && value.length > 0
      ? formatUnscaled(unscaledFromBytes(value), this.#scale)
      : value;
  }

  protected override _toValue(value: unknown): unknown {
    if (typeof value !== 'string') return value;
    const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(value);
    if (match === null) return undefined;
    const fraction = (match[3] ?? '').padEnd(this.#scale, '0');
    let unscaled = BigInt(`${match[1] ?? ''}${match[2] ?? ''}${fraction}`);
    const bytes: number[] = [];
    // Minimal big-endian two's complement.
    for (;;) {
      const byte = Number(BigInt.asUintN(8, unscaled));
      bytes.unshift(byte);
      unscaled >>= 8n;
      if ((unscaled === 0n && byte < 128) || (unscaled === -1n && byte >= 128)) break;
    }
    return Buffer.from(bytes);
  }

  protected override _resolve(type: avro.Type): ((value: unknown) => unknown) | undefined {
    return type instanceof DecimalText || avro.Type.isType(type, 'bytes') ? (value: unknown) => value : undefined;
  }
}

/** avsc `logicalTypes` for `forSchema` / the schema registry client's Avro options. */
export const avroDecimalLogicalTypes: Readonly<Record<string, typeof avro.types.LogicalType>> = {
  decimal: DecimalText,
};
