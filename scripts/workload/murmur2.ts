/** The workload places keys as Kafka's default partitioner does; the hash lives with the operators. */
export { kafkaPartition, murmur2 } from '../../operators/kafka-partitioner.ts';
