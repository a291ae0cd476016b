/**
 * Entry of a decode-pool worker thread (see decode-pool.ts for the protocol's why).
 *
 * In: one batch as a single transferred byte buffer plus per-message metadata.
 * Out: one JSON string of the batch's `Decoded` results, in message order. Dead letters travel as
 * `{kind, errorKind, reason}` only: the caller still holds the original key/value Buffers and
 * rebuilds the letter around them, so the bytes never cross the thread boundary.
 */
import { parentPort } from 'node:worker_threads';
import { DecimalColumns, type DebeziumDecimalOptions } from './debezium-decimals.ts';
import { decodeDebeziumJson } from './debezium-json.ts';
import type { Decoded, RawMessage } from './raw-message.ts';

/** A batch as the pool sends it. `lengths[2i]`/`[2i+1]`: key/value byte length of message i, -1 for null. */
export interface DecodeRequest {
  readonly id: number;
  readonly topics: readonly string[];
  readonly partitions: Int32Array<ArrayBuffer>;
  readonly offsets: readonly string[];
  readonly lengths: Int32Array<ArrayBuffer>;
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** The source's decimal settings (plain data: they cross the thread boundary with each batch). */
  readonly decimals?: DebeziumDecimalOptions;
}

/** Compiled once per worker for the settings object last seen (a pool sends the same settings every time). */
let compiled: { readonly from: string; readonly columns: DecimalColumns } | undefined;
function decimalsOf(options: DebeziumDecimalOptions | undefined): DecimalColumns {
  const from = JSON.stringify(options ?? {});
  if (compiled?.from !== from) compiled = { from, columns: new DecimalColumns(options) };
  return compiled.columns;
}

export type DecodeResponse =
  | { readonly id: number; readonly json: string; readonly deadLetters: readonly number[] }
  | { readonly id: number; readonly error: string };

/** A dead letter without its bytes, as it crosses the thread boundary. */
export interface WireDeadLetter {
  readonly kind: 'dead-letter';
  readonly errorKind: Extract<Decoded<unknown>, { kind: 'dead-letter' }>['letter']['errorKind'];
  readonly reason: string;
}

export function decodeRequest(request: DecodeRequest): DecodeResponse {
  const { bytes, lengths } = request;
  const decimals = decimalsOf(request.decimals);
  const out: (Decoded<unknown> | WireDeadLetter)[] = new Array<Decoded<unknown> | WireDeadLetter>(
    request.offsets.length,
  );
  const deadLetters: number[] = [];
  let at = 0;
  const slice = (length: number): Buffer | null => {
    if (length < 0) return null;
    const view = Buffer.from(bytes.buffer, bytes.byteOffset + at, length);
    at += length;
    return view;
  };
  for (let i = 0; i < out.length; i++) {
    const key = slice(lengths[2 * i] as number);
    const value = slice(lengths[2 * i + 1] as number);
    const message: RawMessage = {
      topic: request.topics[i] as string,
      partition: request.partitions[i] as number,
      offset: request.offsets[i] as string,
      key,
      value,
      timestampMs: 0,
    };
    const decoded = decodeDebeziumJson(message, { decimals });
    if (decoded.kind === 'dead-letter') {
      out[i] = { kind: 'dead-letter', errorKind: decoded.letter.errorKind, reason: decoded.letter.reason };
      deadLetters.push(i);
    } else out[i] = decoded;
  }
  return { id: request.id, json: JSON.stringify(out), deadLetters };
}

const port = parentPort;
if (port !== null) {
  port.on('message', (request: DecodeRequest) => {
    let response: DecodeResponse;
    try {
      response = decodeRequest(request);
    } catch (error) {
      response = { id: request.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
    }
    port.postMessage(response);
  });
}
