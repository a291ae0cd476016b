/**
 * The headers by which an exchange topic (a repartition topic between group-mode stages,
 * runtime/group/repartition-topic.ts) carries its upstream tasks' watermarks: every record has
 * `cdcflow.watermark` (the upstream task's watermark as it stood before the record, as decimal
 * text, `-Infinity` before it read anything) and `cdcflow.exchange-origin` (the upstream source
 * partition, stable across owners). A watermark-only control record also has
 * `cdcflow.exchange-control: watermark`, no key and no value; the source consumes it (its offset
 * advances and is checkpointed) and never hands it to the job or to the dead-letter topic.
 */
import type { CarriedWatermark } from '../source.ts';
import type { RawMessage } from './raw-message.ts';

export const EXCHANGE_HEADERS = {
  watermark: 'cdcflow.watermark',
  origin: 'cdcflow.exchange-origin',
  control: 'cdcflow.exchange-control',
  /** How many upstream origins write the topic (optional). */
  origins: 'cdcflow.exchange-origins',
} as const;

/** The only kind of control record so far. */
export const WATERMARK_CONTROL = 'watermark';

export interface ExchangeHeaders {
  /** Absent on a record that carries no (readable) watermark. */
  readonly carried: CarriedWatermark | undefined;
  /** A control record: never a record of the job. */
  readonly control: boolean;
}

/** What a message's headers say about the exchange; `undefined` for a message that has none of them. */
export function exchangeHeadersOf(message: RawMessage): ExchangeHeaders | undefined {
  const headers = message.headers;
  if (headers === undefined) return undefined;
  const control = text(headers[EXCHANGE_HEADERS.control]) !== undefined;
  const origin = text(headers[EXCHANGE_HEADERS.origin]);
  const watermark = parseWatermark(text(headers[EXCHANGE_HEADERS.watermark]));
  if (!control && origin === undefined) return undefined;
  const origins = Number(text(headers[EXCHANGE_HEADERS.origins]));
  const carried =
    origin === undefined || watermark === undefined
      ? undefined
      : { origin, watermark, ...(Number.isSafeInteger(origins) && origins > 0 ? { origins } : {}) };
  return { carried, control };
}

/** Decimal text; infinities as `-Infinity` / `Infinity`. */
export function formatWatermark(watermark: number): string {
  return String(watermark);
}

function parseWatermark(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const parsed = Number(value);
  return Number.isNaN(parsed) ? undefined : parsed;
}

function text(value: Buffer | string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.toString('utf8');
}
