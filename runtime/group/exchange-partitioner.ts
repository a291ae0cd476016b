/**
 * Kafka's default partitioner (murmur2 of the key bytes, as the Java client and kafkajs hash), for
 * a repartition topic whose messages keep the row's own Debezium key but are placed by the
 * exchange key: one exchange key always lands in one partition, hence one downstream task.
 */
function murmur2(data: Uint8Array): number {
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

/** The partition of `exchangeKey` (its UTF-8 text) among `partitions`, as Kafka would pick it. */
export function exchangePartition(exchangeKey: string, partitions: number): number {
  return (murmur2(Buffer.from(exchangeKey, 'utf8')) & 0x7fffffff) % partitions;
}
