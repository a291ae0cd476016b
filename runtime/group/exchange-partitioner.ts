/**
 * Kafka's default partitioner (murmur2 of the key bytes, as the Java client and kafkajs hash), for
 * a repartition topic whose messages keep the row's own Debezium key but are placed by the
 * exchange key: one exchange key always lands in one partition, hence one downstream task.
 */
import { kafkaPartition } from '../../operators/kafka-partitioner.ts';

/** The partition of `exchangeKey` (its UTF-8 text) among `partitions`, as Kafka would pick it. */
export function exchangePartition(exchangeKey: string, partitions: number): number {
  return kafkaPartition(Buffer.from(exchangeKey, 'utf8'), partitions);
}
