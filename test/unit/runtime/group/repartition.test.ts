import { describe, expect, it } from 'vitest';
import { decodeDebeziumJson } from '../../../../operators/sources/kafka/debezium-json.ts';
import { resolveRecordChecks, validateChangeEvent } from '../../../../operators/sources/kafka/event-validation.ts';
import { stageOptions } from '../../../../runtime/group/group-stages.ts';
import {
  RepartitionTopicError,
  repartitionMessage,
  repartitionTopicName,
} from '../../../../runtime/group/repartition-topic.ts';
import { exchangePartition } from '../../../../runtime/group/exchange-partitioner.ts';
import { kafkaPartition } from '../../../../scripts/workload/murmur2.ts';
import type { ChangeEvent } from '../../../../runtime/index.ts';
import { generateWorkload } from '../../../../scripts/workload/generator.ts';

function decode(topic: string, partition: number, offset: string, key: Buffer | null, value: Buffer | null) {
  const decoded = decodeDebeziumJson({ topic, partition, offset, key, value, timestampMs: 0 });
  if (decoded.kind !== 'change') throw new Error(`not an event: ${JSON.stringify(decoded)}`);
  return decoded.event as ChangeEvent<Record<string, unknown>>;
}

describe('repartition topics', () => {
  it('re-encodes every kind of workload event so the Debezium decoder reads back the same event', () => {
    let checked = 0;
    for (const r of generateWorkload({ keys: 50, events: 600, partitions: 2, duplicateFraction: 0.05, seed: 7 })) {
      if (r.value === null) continue;
      const original = decode('orders', r.partition, String(r.seq), r.key, r.value);
      const message = repartitionMessage(original, (e) => String(e.after?.['status'] ?? 'deleted'), 4);
      const again = decode(
        'by-status',
        0,
        '5',
        Buffer.from(message.key as string),
        Buffer.from(message.value as string),
      );
      // The downstream source's checks (key names the row's columns and agrees with both images) pass.
      expect(validateChangeEvent(again, resolveRecordChecks(), again.source.tsMs, true)).toBeUndefined();
      expect(message.partition).toBe(exchangePartition(String(original.after?.['status'] ?? 'deleted'), 4));
      expect({ ...again, key: null, origin: null }).toEqual({ ...original, key: null, origin: null });
      checked += 1;
    }
    expect(checked).toBeGreaterThan(500);
  });

  it('places exchange keys as the Kafka default partitioner does', () => {
    // Reference values: kafkaPartition (scripts/workload/murmur2.ts, checked against the Java client).
    for (const status of ['pending', 'paid', 'shipped', 'delivered'])
      for (const n of [1, 4, 6]) expect(exchangePartition(status, n)).toBe(kafkaPartition(Buffer.from(status), n));
  });

  it('names the internal topic after the job and the exchange, and refuses names Kafka would', () => {
    expect(repartitionTopicName('revenue', 'by-status')).toBe('revenue-by-status-repartition');
    expect(() => repartitionTopicName('revenue windows', 'by-status')).toThrow(RepartitionTopicError);
    expect(() => repartitionTopicName('r', 'x'.repeat(250))).toThrow(/249/);
  });

  it('gives each stage its own consumer group and task names', () => {
    const o = stageOptions(
      { jobName: 'rw', groupId: 'g', stages: [] },
      { name: 'windows', topics: ['rw-by-status-repartition'], build: () => undefined },
    );
    expect([o.jobName, o.groupId, o.topics]).toEqual(['rw.windows', 'g-windows', ['rw-by-status-repartition']]);
  });
});
