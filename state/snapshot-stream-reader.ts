import { StateError } from './errors.ts';
import type { KeyGroupRange } from './key-groups.ts';
import type { StoreWrite } from './key-value-store.ts';
import type { SnapshotChunks } from './snapshot-storage.ts';

/**
 * `decodeSnapshot` over a file read in chunks: a snapshot file may be larger than any Buffer
 * (Node refuses to read a file over 2 GiB in one call) and than memory, so restore parses it
 * incrementally. Memory held at once: one chunk, the entry that straddles two chunks, and the
 * batch of writes handed out. Sections of key groups outside `range` are skipped unread (their
 * bytes are consumed and dropped as they arrive, never gathered).
 */
export async function* decodeSnapshotChunks(
  chunks: SnapshotChunks,
  range: KeyGroupRange,
  source: string,
  limits: { readonly maxEntries: number; readonly maxBytes: number },
): AsyncGenerator<StoreWrite[]> {
  const fail = (why: string): never => {
    throw new StateError(`snapshot file ${source} is corrupt: ${why}`);
  };
  const input = new ChunkReader(chunks[Symbol.asyncIterator](), chunks.skip?.bind(chunks));
  try {
    if (!(await input.fill(5))) fail('bad magic');
    if (input.take(4).toString('latin1') !== 'CDST') fail('bad magic');
    const version = input.take(1)[0];
    if (version !== 1 && version !== 2) fail(`unsupported version ${String(version)}`);
    let sections = Number.POSITIVE_INFINITY;
    if (version === 1) {
      if (!(await input.fill(4))) fail('truncated header');
      sections = input.take(4).readUInt32BE(0);
    }
    let batch: StoreWrite[] = [];
    let batchBytes = 0;
    for (let s = 0; s < sections; s++) {
      // Version 2 has no count: its sections run to the end of the file.
      if (version === 2 && !(await input.fill(1))) break;
      if (!(await input.fill(10))) fail('truncated section header');
      const header = input.take(10);
      const group = header.readUInt16BE(0);
      const entries = header.readUInt32BE(2);
      const bytes = header.readUInt32BE(6);
      if (group < range.start || group > range.end) {
        if (!(await input.skip(bytes))) fail('truncated section');
        continue;
      }
      let consumed = 0;
      for (let e = 0; e < entries; e++) {
        if (input.available < 4 && !(await input.fill(4))) fail('truncated section');
        const keyLength = input.take(4).readUInt32BE(0);
        if (input.available < keyLength + 4 && !(await input.fill(keyLength + 4))) fail('truncated section');
        const key = input.take(keyLength);
        const valueLength = input.take(4).readInt32BE(0);
        let value: Buffer | null = null;
        if (valueLength >= 0) {
          if (input.available < valueLength && !(await input.fill(valueLength))) fail('truncated section');
          value = input.take(valueLength);
        }
        consumed += 8 + keyLength + Math.max(valueLength, 0);
        if (consumed > bytes) fail(`section of key group ${group} has inconsistent length`);
        batch.push({ key, value });
        batchBytes += key.length + (value?.length ?? 0);
        if (batch.length >= limits.maxEntries || batchBytes >= limits.maxBytes) {
          yield batch;
          batch = [];
          batchBytes = 0;
        }
      }
      if (consumed !== bytes) fail(`section of key group ${group} has inconsistent length`);
    }
    if (batch.length > 0) yield batch;
  } finally {
    await input.close();
  }
}

/** A queue of chunks read from an async iterator, consumed by exact byte counts. */
class ChunkReader {
  private chunks: Buffer[] = [];
  /** Offset of the first unread byte in `chunks[0]`. */
  private head = 0;
  /** Unread bytes buffered. */
  available = 0;
  private done = false;

  constructor(
    private readonly source: AsyncIterator<Buffer>,
    /** Moves the source past bytes not yet read, if it can (a file: yes). */
    private readonly skipUnread: ((bytes: number) => void) | undefined,
  ) {}

  /** Buffers until `n` bytes are available; false if the input ends first. */
  async fill(n: number): Promise<boolean> {
    while (this.available < n) {
      if (this.done) return false;
      const next = await this.source.next();
      if (next.done === true) {
        this.done = true;
        return false;
      }
      if (next.value.length === 0) continue;
      this.chunks.push(next.value);
      this.available += next.value.length;
    }
    return true;
  }

  /**
   * The next `n` bytes (the caller made sure they are buffered). Within one chunk a view of it;
   * across chunks a copy — callers keep what they take only until it is written to the store,
   * which copies it.
   */
  take(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.consume(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const chunk = this.chunks[0] as Buffer;
      const part = Math.min(n - at, chunk.length - this.head);
      chunk.copy(out, at, this.head, this.head + part);
      at += part;
      this.consume(part);
    }
    return out;
  }

  /**
   * Drops `n` bytes: buffered ones, then unread ones — skipped at the source if it can, else read
   * and dropped. False if the input ends first (a source that skips finds out at the next read).
   */
  async skip(n: number): Promise<boolean> {
    let left = n;
    while (left > 0 && this.available > 0) {
      const part = Math.min(left, (this.chunks[0] as Buffer).length - this.head);
      this.consume(part);
      left -= part;
    }
    if (left > 0 && this.skipUnread !== undefined && !this.done) {
      this.skipUnread(left);
      return true;
    }
    while (left > 0) {
      if (this.available === 0 && !(await this.fill(1))) return false;
      const part = Math.min(left, (this.chunks[0] as Buffer).length - this.head);
      this.consume(part);
      left -= part;
    }
    return true;
  }

  async close(): Promise<void> {
    this.chunks = [];
    if (!this.done) await this.source.return?.();
  }

  private consume(n: number): void {
    this.head += n;
    this.available -= n;
    const first = this.chunks[0];
    if (first !== undefined && this.head === first.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}
