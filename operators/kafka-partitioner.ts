/**
 * Kafka's default partitioner hash (murmur2, as in the Java client and kafkajs), so the partition
 * the workload assigns a key is the one any Kafka producer would pick for the same key bytes:
 * peers that produce the workload themselves put every key where we do.
 */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  const length = data.length;
  let h = (0x9747b28c ^ length) | 0;
  const blocks = length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24) | 0;
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const rest = length & 3;
  if (rest === 3) h ^= data[blocks + 2]! << 16;
  if (rest >= 2) h ^= data[blocks + 1]! << 8;
  if (rest >= 1) {
    h ^= data[blocks]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's `Utils.toPositive(murmur2(key)) % partitions`. */
export function kafkaPartition(key: Uint8Array, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}
