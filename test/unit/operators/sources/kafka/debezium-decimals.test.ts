import { describe, expect, it } from 'vitest';
import {
  decimalFromDouble,
  formatUnscaled,
  unscaledFromBase64,
} from '../../../../../operators/sources/kafka/decimal-bytes.ts';
import {
  DecimalColumns,
  DecimalConfigError,
  type DebeziumDecimalOptions,
} from '../../../../../operators/sources/kafka/debezium-decimals.ts';
import { decodeDebeziumJson } from '../../../../../operators/sources/kafka/debezium-json.ts';
import type { Decoded, JsonRow, RawMessage } from '../../../../../operators/sources/kafka/raw-message.ts';
import { SOURCE_VALUES, fixtureMessages, type FixtureName } from '../../../../fixtures/debezium/fixtures.ts';

function decodeAll(name: FixtureName, decimals?: DebeziumDecimalOptions): Decoded<JsonRow>[] {
  const options = decimals === undefined ? {} : { decimals: new DecimalColumns(decimals) };
  return fixtureMessages(name).map((m) => decodeDebeziumJson(m, options));
}

/** The `after` rows of the decoded changes, truncate left out. */
function afters(decoded: Decoded<JsonRow>[]): unknown[] {
  return decoded.flatMap((d) => {
    if (d.kind !== 'change') throw new Error(`expected a change, got ${JSON.stringify(d)}`);
    return d.event.op === 't' ? [] : [d.event.after];
  });
}

/** Two's-complement minimal big-endian bytes of `n`, base64: what Debezium writes for precise. */
function preciseBase64(n: bigint): string {
  const bytes: number[] = [];
  for (let v = n; ;) {
    const byte = Number(BigInt.asUintN(8, v));
    bytes.unshift(byte);
    v >>= 8n;
    if ((v === 0n && byte < 128) || (v === -1n && byte >= 128)) break;
  }
  return Buffer.from(bytes).toString('base64');
}

function withValue(message: RawMessage, edit: (value: Record<string, unknown>) => void): RawMessage {
  const value = JSON.parse((message.value as Buffer).toString()) as Record<string, unknown>;
  edit(value);
  return { ...message, value: Buffer.from(JSON.stringify(value)) };
}

describe('decimals from real Debezium output', () => {
  it('precise with schemas enabled: scale from the Connect schema, VariableScaleDecimal from its struct', () => {
    // Before the fix the schema was thrown away and amounts stayed base64 ("1234" for -26588.24).
    expect(afters(decodeAll('precise-schemas'))).toEqual(SOURCE_VALUES);
  });

  it('precise with schemas disabled: scale per column from the source options', () => {
    expect(
      afters(
        decodeAll('precise-no-schemas', {
          handling: 'precise',
          columns: { 'public.dvfixmx8rbuyu_amounts.amount': 2, big: 0 },
        }),
      ),
    ).toEqual(SOURCE_VALUES);
  });

  it('precise with schemas disabled and no scale configured still decodes VariableScaleDecimal (self-describing)', () => {
    const rows = afters(decodeAll('precise-no-schemas')) as { ratio: unknown }[];
    expect(rows.map((r) => r.ratio)).toEqual(SOURCE_VALUES.map((r) => r.ratio));
  });

  it('string mode: values pass checked, with and without schemas', () => {
    expect(
      afters(decodeAll('string-no-schemas', { handling: 'string', columns: { amount: 2, ratio: 0, big: 0 } })),
    ).toEqual(SOURCE_VALUES);
    expect(afters(decodeAll('string-schemas', { columns: { amount: 2 } }))).toEqual(SOURCE_VALUES);
    expect(afters(decodeAll('string-schemas'))).toEqual(SOURCE_VALUES);
  });

  it('double mode: doubles become decimal text fixed to the configured scale', () => {
    const rows = afters(decodeAll('double-no-schemas', { handling: 'double', columns: { amount: 2 } })) as {
      amount: unknown;
    }[];
    expect(rows.map((r) => r.amount)).toEqual(SOURCE_VALUES.map((r) => r.amount));
  });

  describe('never passes on a value it cannot decode with certainty', () => {
    it('a Decimal in the schema without a scale: dead letter naming the column and the setting', () => {
      const message = withValue(fixtureMessages('precise-schemas')[1] as RawMessage, (v) => {
        const after = (
          v['schema'] as { fields: { field: string; fields: { field: string; parameters?: unknown }[] }[] }
        ).fields.find((f) => f.field === 'after')!;
        delete after.fields.find((f) => f.field === 'amount')!.parameters;
      });
      const decoded = decodeDebeziumJson(message);
      expect(decoded.kind).toBe('dead-letter');
      if (decoded.kind !== 'dead-letter') return;
      expect(decoded.letter.errorKind).toBe('undecodable-value');
      expect(decoded.letter.reason).toContain('public.dvfixmx8rbenh_amounts.amount');
      expect(decoded.letter.reason).toContain("decimals.columns['public.dvfixmx8rbenh_amounts.amount']");
    });

    it('precise configured but the connector writes strings: not base64 → dead letter saying which mode to set', () => {
      const decoded = decodeAll('string-no-schemas', { handling: 'precise', columns: { amount: 2 } });
      const letters = decoded.filter((d) => d.kind === 'dead-letter');
      expect(letters.length).toBeGreaterThan(0);
      for (const d of letters)
        if (d.kind === 'dead-letter') expect(d.letter.reason).toMatch(/amount: .* is not base64 .*decimals.handling/);
    });

    it('string configured but the value is base64: dead letter', () => {
      const decoded = decodeAll('precise-no-schemas', { handling: 'string', columns: { amount: 2 } });
      const first = decoded[0];
      expect(first?.kind === 'dead-letter' && first.letter.reason).toMatch(/amount: "JxA=" is not decimal text/);
    });

    it('double configured but the value is a string: dead letter', () => {
      const first = decodeAll('string-no-schemas', { handling: 'double', columns: { amount: 2 } })[0];
      expect(first?.kind === 'dead-letter' && first.letter.reason).toMatch(/not a finite number/);
    });
  });

  it('rejects settings that cannot be right when the source is built', () => {
    expect(() => new DecimalColumns({ columns: { amount: 2.5 } })).toThrow(DecimalConfigError);
    expect(() => new DecimalColumns({ columns: { 'a.b.c.d': 2 } })).toThrow(/schema.table.column/);
    expect(() => new DecimalColumns({ handling: 'exact' as 'precise' })).toThrow(/decimal.handling.mode/);
  });
});

describe('decimal bytes', () => {
  it("decodes base64 two's complement exactly, short (number path) and long (bigint path)", () => {
    let seed = 7n;
    const next = (): bigint => (seed = (seed * 6364136223846793005n + 1442695040888963407n) % 2n ** 64n);
    for (let i = 0; i < 5_000; i++) {
      const bits = BigInt(i % 120) + 1n;
      const n = ((next() * next()) % 2n ** bits) - 2n ** (bits - 1n);
      const decoded = unscaledFromBase64(preciseBase64(n));
      expect(BigInt(decoded as number | bigint)).toBe(n);
    }
  });

  it('refuses what is not base64', () => {
    for (const text of ['', 'abc', '12.5', 'A===', 'ab$=', '-1234', 'Ag==Ag==x'])
      expect(unscaledFromBase64(text)).toBeUndefined();
  });

  it('formats with scale, zero padding and negative scale', () => {
    expect(formatUnscaled(-2658824, 2)).toBe('-26588.24');
    expect(formatUnscaled(5, 2)).toBe('0.05');
    expect(formatUnscaled(-5, 3)).toBe('-0.005');
    expect(formatUnscaled(0, 2)).toBe('0.00');
    expect(formatUnscaled(12, -3)).toBe('12000');
    expect(formatUnscaled(2n ** 70n, 0)).toBe('1180591620717411303424');
  });

  it('turns doubles into decimal text', () => {
    expect(decimalFromDouble(-26588.24, 2)).toBe('-26588.24');
    expect(decimalFromDouble(1e-20, undefined)).toBe('0.00000000000000000001');
    expect(decimalFromDouble(1.2345678901234569e23, undefined)).toBe('123456789012345690000000');
    expect(decimalFromDouble(Number.NaN, 2)).toBeUndefined();
  });
});
