/** Topics captured from the real Debezium connector (`scripts/capture-debezium-fixtures.ts interleaved`), replayed as the source would read them. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChangeEvent } from '../../operators/change-event.ts';
import { decodeDebeziumJson } from '../../operators/sources/kafka/debezium-json.ts';
import type { JsonRow } from '../../operators/sources/kafka/raw-message.ts';

export interface DebeziumFixture {
  readonly connector: string;
  readonly table: string;
  /** The source table at the end of the capture, ordered by id. */
  readonly rows: readonly Record<string, unknown>[];
  readonly records: readonly {
    readonly key: unknown;
    readonly value: Record<string, unknown> | null;
    readonly offset: string;
  }[];
}

export function loadDebeziumFixture(name: string): DebeziumFixture {
  return JSON.parse(
    readFileSync(join(import.meta.dirname, '..', 'fixtures', 'debezium', name), 'utf8'),
  ) as DebeziumFixture;
}

/** The fixture's change events, decoded by cdcflow's Debezium JSON decoder (tombstones dropped). */
export function fixtureEvents(fixture: DebeziumFixture, topic = 'fixture'): ChangeEvent<JsonRow>[] {
  const events: ChangeEvent<JsonRow>[] = [];
  for (const record of fixture.records) {
    const bytes = (v: unknown): Buffer | null => (v === null ? null : Buffer.from(JSON.stringify(v)));
    const decoded = decodeDebeziumJson({
      topic,
      partition: 0,
      offset: record.offset,
      key: bytes(record.key),
      value: bytes(record.value),
      timestampMs: 0,
    });
    if (decoded.kind === 'change') events.push(decoded.event);
    else if (decoded.kind !== 'tombstone')
      throw new Error(`fixture record at ${record.offset} did not decode: ${JSON.stringify(decoded)}`);
  }
  return events;
}
