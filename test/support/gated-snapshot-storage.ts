/**
 * A slow snapshot storage for tests of the asynchronous snapshot phase: it writes through to a
 * real storage, but holds every write (a delta's `write`, a full snapshot's chunks after the
 * first `holdAfterChunks`) until the test calls `open()`, or fails it when told to. Held writes
 * pull no further chunk, so the store scan behind a full snapshot has not read anything yet
 * while the test keeps writing state: what the file ends up holding is the view pinned at the
 * barrier, not whatever the scan would see later.
 */
import type { SnapshotChunks, SnapshotStorage } from '../../state/snapshot-storage.ts';

export interface GatedStorageOptions {
  /** Chunks of a full snapshot written before the gate holds (the first is the file header). @default 1 */
  readonly holdAfterChunks?: number;
  /** Instead of waiting for the gate, fail every write at the hold point with this error. */
  readonly failWith?: Error;
}

export class GatedSnapshotStorage implements SnapshotStorage {
  /** Writes that reached the hold point (are being held, or failed there). */
  held = 0;
  /** Chunks handed to the real storage so far. */
  chunksWritten = 0;
  private released = false;
  private release: () => void = () => undefined;
  private readonly gate = new Promise<void>((resolve) => (this.release = resolve));

  constructor(
    private readonly inner: SnapshotStorage & Required<Pick<SnapshotStorage, 'writeChunks'>>,
    private readonly options: GatedStorageOptions = {},
  ) {}

  /** Lets every held and future write through. */
  open(): void {
    this.released = true;
    this.release();
  }

  get isOpen(): boolean {
    return this.released;
  }

  async write(name: string, data: Buffer): Promise<string> {
    await this.hold();
    return this.inner.write(name, data);
  }

  writeChunks(name: string, chunks: AsyncIterable<Buffer>): Promise<string> {
    return this.inner.writeChunks(name, this.gated(chunks));
  }

  read(path: string): Promise<Buffer> {
    return this.inner.read(path);
  }

  readChunks(path: string): SnapshotChunks {
    return (
      this.inner.readChunks?.(path) ??
      (async function* whole(read: Promise<Buffer>) {
        yield await read;
      })(this.inner.read(path))
    );
  }

  private async hold(): Promise<void> {
    this.held += 1;
    if (this.options.failWith !== undefined) throw this.options.failWith;
    await this.gate;
  }

  private async *gated(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    const it = chunks[Symbol.asyncIterator]();
    const holdAfter = this.options.holdAfterChunks ?? 1;
    try {
      for (let n = 0; ; n++) {
        // Held *before* pulling the next chunk, so the producer (the store scan) waits too.
        if (n === holdAfter) await this.hold();
        const next = await it.next();
        if (next.done === true) return;
        this.chunksWritten += 1;
        yield next.value;
      }
    } finally {
      await it.return?.();
    }
  }
}
