/**
 * The Confluent wire format: magic byte 0, the schema id as a 4-byte big-endian int, then the
 * serialised body. See https://docs.confluent.io/platform/current/schema-registry/fundamentals/serdes-develop/index.html#wire-format
 */
export const MAGIC_BYTE = 0;
export const HEADER_BYTES = 5;

export type WireHeader =
  | { readonly ok: true; readonly schemaId: number }
  | { readonly ok: false; readonly kind: 'bad-magic-byte' | 'truncated'; readonly reason: string };

export function readWireHeader(frame: Buffer): WireHeader {
  if (frame.length === 0) return { ok: false, kind: 'truncated', reason: 'empty value: no Confluent wire header' };
  if (frame[0] !== MAGIC_BYTE) {
    return {
      ok: false,
      kind: 'bad-magic-byte',
      reason: `magic byte is 0x${frame[0]?.toString(16).padStart(2, '0')}, expected 0x00: not Confluent wire format`,
    };
  }
  if (frame.length < HEADER_BYTES) {
    return { ok: false, kind: 'truncated', reason: `frame of ${frame.length} bytes is shorter than the 5-byte header` };
  }
  return { ok: true, schemaId: frame.readInt32BE(1) };
}

export function writeWireFrame(schemaId: number, body: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  frame[0] = MAGIC_BYTE;
  frame.writeInt32BE(schemaId, 1);
  body.copy(frame, HEADER_BYTES);
  return frame;
}
