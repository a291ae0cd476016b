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
  if (length === 0 || (length & 3) !== 0) return undefined;
  const padding = text.charCodeAt(length - 1) === 61 ? (text.charCodeAt(length - 2) === 61 ? 2 : 1) : 0;
  const bytes = (length >> 2) * 3 - padding;
  // Whole 24-bit groups: exact in a double up to 2 groups (48 bits), BigInt beyond.
  if (length <= 8) {
    let value = 0;
    for (let i = 0; i < length; i += 4) {
      const group = groupAt(text, i, length - padding);
      if (group < 0) return undefined;
      value = value * 16_777_216 + group;
    }
    const cut = padding === 0 ? 1 : padding === 1 ? 256 : 65_536;
    // The padded bits must be zero (canonical base64, as Java's encoder writes).
    if (value % cut !== 0) return undefined;
    value /= cut;
    const range = 2 ** (bytes * 8);
    return value >= range / 2 ? value - range : value;
  }
  let value = 0n;
  for (let i = 0; i < length; i += 4) {
    const group = groupAt(text, i, length - padding);
    if (group < 0) return undefined;
    value = (value << 24n) | BigInt(group);
  }
  if (padding > 0) {
    const shift = BigInt(padding * 8);
    if ((value & ((1n << shift) - 1n)) !== 0n) return undefined;
    value >>= shift;
  }
  return BigInt.asIntN(bytes * 8, value);
}

/** The 24 bits of the 4 characters at `at` (characters at or past `end` are padding, read as 0); -1 if invalid. */
function groupAt(text: string, at: number, end: number): number {
  let group = 0;
  for (let i = at; i < at + 4; i++) {
    let sextet = 0;
    if (i < end) {
      const code = text.charCodeAt(i);
      sextet = code < 128 ? (BASE64[code] as number) : -1;
      if (sextet < 0) return -1;
    } else if (text.charCodeAt(i) !== 61) return -1;
    group = (group << 6) | sextet;
  }
  return group;
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
