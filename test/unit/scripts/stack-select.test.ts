import { describe, expect, it } from 'vitest';
import { selectServices } from '../../../scripts/stack/services/index.ts';

const names = (list: readonly { name: string }[]) => list.map((s) => s.name);

describe('stack service selection', () => {
  it('`up debezium` brings up Kafka and Postgres first', () => {
    expect(names(selectServices(['debezium'], true))).toEqual(['kafka', 'postgres', 'debezium']);
  });

  it('`down debezium` / `status debezium` name the worker alone, never the Kafka and Postgres others use', () => {
    expect(names(selectServices(['debezium']))).toEqual(['debezium']);
  });

  it('all services, Debezium after what it depends on', () => {
    const all = names(selectServices([], true));
    expect(all.indexOf('debezium')).toBeGreaterThan(all.indexOf('kafka'));
    expect(all.indexOf('debezium')).toBeGreaterThan(all.indexOf('postgres'));
  });
});
