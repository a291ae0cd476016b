import { describe, expect, it } from 'vitest';
import { externalVersionOf } from '../../../../operators/sinks/elasticsearch/external-version.ts';
import { snapshotPosition, streamPosition } from '../../../../state/change-position.ts';
import { fixtureEvents, loadDebeziumFixture } from '../../../support/debezium-fixtures.ts';

describe('Elasticsearch external version of a commit position', () => {
  it("never decreases in the real connector's commit order, and rises from one transaction to the next", () => {
    const events = fixtureEvents(loadDebeziumFixture('interleaved-snapshot.json'));
    const versions = events.map((e) => externalVersionOf(e.source.position));
    expect(versions.every(Number.isSafeInteger)).toBe(true);
    expect(versions.filter((v, i) => i > 0 && v < (versions[i - 1] as number))).toEqual([]);
    const streamed = events.filter((e) => e.op !== 'r');
    const crossings = streamed.filter((e, i) => i > 0 && e.source.txId !== streamed[i - 1]?.source.txId);
    expect(crossings.length).toBeGreaterThan(10);
    for (const e of crossings) {
      const i = streamed.indexOf(e);
      expect(externalVersionOf(e.source.position)).toBeGreaterThan(
        externalVersionOf(streamed[i - 1]?.source.position as typeof e.source.position),
      );
    }
  });

  it('ranks snapshot rows below streamed changes and refuses LSNs it cannot encode', () => {
    expect(externalVersionOf(snapshotPosition(null, 10_000))).toBeLessThan(externalVersionOf(streamPosition(null, 5)));
    expect(externalVersionOf(streamPosition(2n ** 52n, 1))).toBeNaN();
  });
});
