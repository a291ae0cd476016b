import { decodeDebeziumJson } from '../../operators/sources/kafka/debezium-json.ts';
import type { WorkloadRecord } from '../../scripts/workload/generator.ts';

/** A generated workload record decoded as the Kafka source would read it from topic `orders`. */
export function decodeWorkloadRecord<Row>(r: WorkloadRecord): ReturnType<typeof decodeDebeziumJson<Row>> {
  return decodeDebeziumJson<Row>({
    topic: 'orders',
    partition: r.partition,
    offset: String(r.seq),
    key: r.key,
    value: r.value,
    timestampMs: 0,
  });
}
