/**
 * The few object-store operations checkpoint storage needs, behind our own interface so the
 * storage logic is tested without a client library and another store (GCS, Azure) fits later.
 * Keys are full object keys inside one bucket.
 */
export interface ObjectStore {
  /** `s3://bucket` style prefix for messages and `StoredCheckpoint.location`. */
  readonly url: string;
  /** Writes `body` under `key`, replacing whatever is there. */
  put(key: string, body: string | Buffer): Promise<void>;
  /**
   * Writes `body` only if `key` does not exist yet (`If-None-Match: *`); returns false if it did.
   * On a store that ignores the condition this is check-then-write (see `conditionalWrites`).
   */
  putIfAbsent(key: string, body: string | Buffer): Promise<boolean>;
  /** Streams the local file at `path` into `key` (never held in memory whole). */
  upload(key: string, path: string): Promise<void>;
  /** The object's text, or undefined if it does not exist. */
  getText(key: string): Promise<string | undefined>;
  /** Streams `key` into the local file `path` (temp file + rename); false if the object does not exist. */
  download(key: string, path: string): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  /** Every key starting with `prefix`. */
  list(prefix: string): Promise<string[]>;
  /** The "folders" directly under `prefix` (ending in `/`), as full key prefixes. */
  listFolders(prefix: string): Promise<string[]>;
  /** Server-side copy inside the store. */
  copy(fromKey: string, toKey: string): Promise<void>;
  /** Deletes the keys; missing ones are fine. */
  delete(keys: readonly string[]): Promise<void>;
  /**
   * Whether the store honours `If-None-Match: *` on PUT: 'supported' (AWS S3 since 2024, MinIO),
   * 'ignored' (S3Proxy 2.6 overwrites), probed once on first use with an object under `underPrefix`
   * (where the job may write: credentials can be limited to a prefix), deleted afterwards.
   */
  conditionalWrites(underPrefix?: string): Promise<'supported' | 'ignored'>;
}

/** Runs `work` over `items` with at most `limit` in flight; rejects with the first failure. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  });
  await Promise.all(lanes);
}
