import { describe, expect, it } from 'vitest';
import { decodeDebeziumJson } from '../../../../../operators/sources/kafka/debezium-json.ts';
import { fixtureMessages } from '../../../../fixtures/debezium/fixtures.ts';
import { message } from './messages.ts';

describe('Debezium transaction-metadata records (real connector output)', () => {
  for (const name of ['precise-schemas-transaction-topic', 'precise-no-schemas-transaction-topic'] as const) {
    it(`are transaction markers, not dead letters (${name})`, () => {
      // Before: every record had no `op` and went to the dead-letter topic as malformed.
      const decoded = fixtureMessages(name).map((m) => decodeDebeziumJson(m));
      expect(decoded.map((d) => (d.kind === 'transaction' ? d.marker.status : d.kind))).toEqual([
        'BEGIN',
        'END',
        'BEGIN',
        'END',
        'BEGIN',
        'END',
        'BEGIN',
        'END',
      ]);
      const end = decoded[1];
      if (end?.kind !== 'transaction') throw new Error('expected a marker');
      expect(end.marker).toMatchObject({ status: 'END', eventCount: 3, tsMs: expect.any(Number) as number });
      expect(end.marker.id).toMatch(/^\d+:\d+$/);
      expect(end.marker.dataCollections).toEqual([
        { dataCollection: expect.stringMatching(/^public\./) as string, eventCount: 3 },
      ]);
      const begin = decoded[0];
      expect(begin?.kind === 'transaction' && begin.marker).toMatchObject({
        status: 'BEGIN',
        eventCount: null,
        dataCollections: [],
      });
    });
  }

  it('a malformed marker is a dead letter with a reason', () => {
    const decoded = decodeDebeziumJson(
      message(
        { status: 'END', id: '1:2', event_count: 'many', data_collections: null, ts_ms: 1 },
        { id: '1:2' },
        'x.transaction',
      ),
    );
    expect(decoded.kind === 'dead-letter' && decoded.letter.reason).toMatch(/event_count/);
  });
});
