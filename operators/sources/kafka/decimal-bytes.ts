/**
 * Exact decimal text from the encodings Debezium uses for NUMERIC/DECIMAL columns. Hot path: a
 * base64 value of up to 8 characters (6 bytes, |unscaled| < 2^47, e.g. every amount below
 * 1.4 trillion at scale 2) is decoded with plain number arithmetic and no allocation; longer ones
 * go through BigInt.
 */

const BASE64 = new Int8Array(128).fill(-1);
{
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < alphabet.length; i++) BASE64[alphabet.charCodeAt(i)] = i;
}

/** The unscaled value of base64 big-endian two's-complement bytes, or undefined when `text` is not such base64. */
export function unscaledFromBase64(text: string): number | bigint | undefined {
  const length = text.length;
  if (length === 0 || length % 4 !== 0) return undefined;
  const padding = text.charCodeAt(length - 1) === 61 ? (text.charCodeAt(length - 2) === 61 ? 2 : 1) : 0;
  const bytes = (length / 4) * 3 - padding;
  if (bytes > 6) return bigUnscaled(text, bytes, padding);
  let value = 0;
  let taken = 0;
  let first = -1;
  for (let i = 0; i < length - padding; i += 1) {
    const code = text.charCodeAt(i);
    const sextet = code < 128 ? (BASE64[code] as number) : -1;
    if (sextet < 0) return undefined;
    value = value * 64 + sextet;
    taken += 6;
    if (taken >= 8 && first < 0) first = Math.floor(value / 2 ** (taken - 8));
  }
  // Drop the bits of the last sextet that are padding (they must be zero in canonical base64).
  const extra = taken - bytes * 8;
  const rest = value % 2 ** extra;
  if (rest !== 0) return undefined;
  value = (value - rest) / 2 ** extra;
  if (bytes === 0) return undefined;
  // Two's complement: a set top bit means value - 2^(8 * bytes).
  return first >= 128 ? value - 2 ** (bytes * 8) : value;
}

function bigUnscaled(text: string, bytes: number, padding: number): number | bigint | undefined {
  for (let i = 0; i < text.length - padding; i += 1) {
    const code = text.charCodeAt(i);
    if (code >= 128 || (BASE64[code] as number) < 0) return undefined;
  }
  const buffer = Buffer.from(text, 'base64');
  if (buffer.length !== bytes) return undefined;
  return unscaledFromBytes(buffer);
}

/** The unscaled value of big-endian two's-complement bytes (Avro `decimal`, Connect `Decimal`). */
export function unscaledFromBytes(bytes: Uint8Array): number | bigint {
  if (bytes.length <= 6) {
    let value = 0;
    for (const byte of bytes) value = value * 256 + byte;
    return bytes.length > 0 && (bytes[0] as number) >= 128 ? value - 2 ** (bytes.length * 8) : value;
  }
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
  const value = BigInt(`0x${hex}`);
  return (bytes[0] as number) >= 128 ? value - (1n << BigInt(bytes.length * 8)) : value;
}

/** `-2658824` at scale 2 → `"-26588.24"`; `5` at scale 2 → `"0.05"`; a negative scale appends zeros. */
export function formatUnscaled(unscaled: number | bigint, scale: number): string {
  const negative = unscaled < 0;
  let digits = (negative ? -unscaled : unscaled).toString();
  if (scale <= 0) {
    if (scale < 0 && digits !== '0') digits += '0'.repeat(-scale);
    return negative ? `-${digits}` : digits;
  }
  if (digits.length <= scale) digits = '0'.repeat(scale - digits.length + 1) + digits;
  const cut = digits.length - scale;
  const text = `${digits.slice(0, cut)}.${digits.slice(cut)}`;
  return negative ? `-${text}` : text;
}

const DECIMAL_TEXT = /^-?\d+(?:\.\d+)?$/;

/** A plain decimal string as Debezium's `string` mode writes it (`"-26588.24"`); no exponent, no NaN. */
export function isDecimalText(text: string): boolean {
  return DECIMAL_TEXT.test(text);
}

/**
 * A double (`decimal.handling.mode=double`) as decimal text. Already rounded by the connector: with
 * a scale it is fixed to that many digits (exact for |x| < 2^53 / 10^scale), without one it is the
 * shortest text that reads back as the same double. Undefined for NaN/Infinity.
 */
export function decimalFromDouble(value: number, scale: number | undefined): string | undefined {
  if (!Number.isFinite(value)) return undefined;
  if (scale !== undefined && scale >= 0 && scale <= 100 && Math.abs(value) < 1e21) return value.toFixed(scale);
  const text = String(value);
  if (!text.includes('e')) return text;
  // 1e+21 and 1e-7 style: expand the exponent without going through floats again.
  const [mantissa = '', exponentText = '0'] = text.split('e');
  const negative = mantissa.startsWith('-');
  const [whole = '', fraction = ''] = (negative ? mantissa.slice(1) : mantissa).split('.');
  const unscaled = BigInt(whole + fraction);
  const out = formatUnscaled(negative ? -unscaled : unscaled, fraction.length - Number(exponentText));
  return out;
}
