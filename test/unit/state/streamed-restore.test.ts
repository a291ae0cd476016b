/**
 * Restore reads snapshot files as streams: a file larger than 2 GiB (Node's limit for one read,
 * `ERR_FS_FILE_TOO_LARGE`) or than memory must restore. The chunk parser is pinned against the
 * whole-buffer decoder at every chunk boundary, and a sparse file of more than 2 GiB (sections of
 * other key groups in a hole, so it costs no disk) restores on both backends.
 */
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { StoreWrite } from '../../../state/key-value-store.ts';
import { replayHandles } from '../../../state/restore.ts';
import type { KeyedStateHandle } from '../../../state/snapshot-handle.ts';
import {
  decodeSnapshot,
  encodeDeltaChunks,
  encodeSnapshot,
  encodeSnapshotStream,
} from '../../../state/snapshot-format.ts';
import { LocalFsSnapshotStorage, type SnapshotChunks } from '../../../state/snapshot-storage.ts';
import { decodeSnapshotChunks } from '../../../state/snapshot-stream-reader.ts';
import { keyGroupOfStateKey, stateKey, stateNamePrefix } from '../../../state/state-key-layout.ts';
import { makeStore, TempDirs, type StoreKind } from './helpers.ts';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

const key = (group: number, user: string): Buffer => stateKey(stateNamePrefix('s'), group, Buffer.from(user));

function entriesOf(groups: readonly number[], perGroup: number): [Buffer, Buffer][] {
  const out: [Buffer, Buffer][] = [];
  for (const group of groups)
    for (let i = 0; i < perGroup; i++) out.push([key(group, `k${i}`), Buffer.alloc(i * 37, i)]);
  return out;
}

async function streamedFile(entries: [Buffer, Buffer][]): Promise<Buffer> {
  async function* batches() {
    yield entries;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of encodeSnapshotStream(batches(), () => true)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** `data` in chunks of `size`; with `skips`, the source can skip unread bytes as a file does. */
function inChunksOf(data: Buffer, size: number, skips: boolean): SnapshotChunks {
  let at = 0;
  return {
    async *[Symbol.asyncIterator]() {
      while (at < data.length) {
        const chunk = data.subarray(at, at + size);
        at += chunk.length;
        yield chunk;
      }
    },
    ...(skips ? { skip: (bytes: number) => void (at += bytes) } : {}),
  };
}

async function decodedInChunks(
  data: Buffer,
  size: number,
  range = { start: 0, end: 127 },
  skips = false,
): Promise<[string, string | null][]> {
  const out: [string, string | null][] = [];
  for await (const batch of decodeSnapshotChunks(inChunksOf(data, size, skips), range, 'f', {
    maxEntries: 5,
    maxBytes: 1000,
  })) {
    expect(batch.length).toBeLessThanOrEqual(5);
    for (const { key: k, value } of batch) out.push([k.toString('hex'), value?.toString('hex') ?? null]);
  }
  return out;
}

const flat = (writes: Iterable<StoreWrite>): [string, string | null][] =>
  [...writes].map((w) => [w.key.toString('hex'), w.value?.toString('hex') ?? null]);

describe('streamed snapshot decoding', () => {
  const entries = entriesOf([1, 2, 9, 40], 12);
  const deltaWrites: StoreWrite[] = [
    ...entries.map(([k, v]) => ({ key: k, value: v })),
    { key: key(3, 'gone'), value: null },
  ];

  it.each([1, 2, 3, 7, 10, 64, 1000, 1 << 20])(
    'decodes full and delta files exactly as the whole-buffer decoder, in chunks of %i bytes',
    async (size) => {
      const full = await streamedFile(entries);
      const delta = encodeSnapshot(deltaWrites);
      for (const [data, range] of [
        [full, { start: 0, end: 127 }],
        [full, { start: 2, end: 9 }],
        [delta, { start: 0, end: 127 }],
        [delta, { start: 3, end: 39 }],
      ] as const) {
        const expected = flat(decodeSnapshot(data, range, 'f'));
        expect(await decodedInChunks(data, size, range)).toEqual(expected);
        expect(await decodedInChunks(data, size, range, true)).toEqual(expected);
      }
    },
  );

  it('a delta is written as chunks of about 1 MiB, deletes included, and reads back in key-group order', async () => {
    const big = Array.from({ length: 300 }, (_, i) => ({ key: key(i % 3, `big${i}`), value: Buffer.alloc(10_000, i) }));
    const writes: StoreWrite[] = [...big, { key: key(1, 'gone'), value: null }];
    const chunks = [...encodeDeltaChunks(writes)];
    expect(chunks.length).toBeGreaterThan(3);
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThan(1.1 * 2 ** 20);
    const data = Buffer.concat(chunks);
    const byGroup = [0, 1, 2].flatMap((g) => writes.filter((w) => keyGroupOfStateKey(w.key) === g));
    expect(await decodedInChunks(data, 4096)).toEqual(flat(byGroup));
  });

  it('reports a truncated file as corrupt, at any cut', async () => {
    const full = await streamedFile(entries);
    for (const cut of [3, 6, 20, full.length - 1]) {
      await expect(decodedInChunks(full.subarray(0, cut), 7)).rejects.toThrow(/is corrupt/);
    }
  });
});

describe('restore of a snapshot file over 2 GiB', () => {
  /**
   * Version-2 file: key group 0's entries, then sections of key group 5 whose bytes lie in a hole
   * (restore skips them unread, as another subtask's groups), past 2 GiB, then key group 1's.
   */
  async function sparseFile(path: string): Promise<number> {
    const head = await streamedFile(entriesOf([0], 20));
    const tail = (await streamedFile(entriesOf([1], 20))).subarray(5); // its sections, without the header
    const file = await open(path, 'w');
    try {
      let at = (await file.write(head, 0, head.length, 0)).bytesWritten;
      const hole = 512 * 1024 * 1024;
      for (let i = 0; i < 5; i++) {
        const header = Buffer.alloc(10);
        header.writeUInt16BE(5, 0);
        header.writeUInt32BE(1, 2);
        header.writeUInt32BE(hole, 6);
        await file.write(header, 0, 10, at);
        at += 10 + hole;
      }
      at += (await file.write(tail, 0, tail.length, at)).bytesWritten;
      return at;
    } finally {
      await file.close();
    }
  }

  it.each<StoreKind>(['memory', 'rocksdb'])(
    'restores every kept key group from it (%s)',
    async (kind) => {
      const dir = await dirs.make('big');
      const path = join(dir, 'chk-1-full.bin');
      const bytes = await sparseFile(path);
      expect((await stat(path)).size).toBeGreaterThan(2 ** 31);
      const handle: KeyedStateHandle = {
        version: 1,
        maxParallelism: 128,
        checkpointId: 1,
        files: [{ path, kind: 'full', keyGroups: [0, 127], bytes, checkpointId: 1 }],
      };
      const store = await makeStore(kind, dirs);
      await store.open();
      try {
        const applied = await replayHandles(store, [handle], { start: 0, end: 1 }, new LocalFsSnapshotStorage('/'), {
          maxParallelism: 128,
          batchSize: 7,
        });
        expect(applied).toBe(40);
        const wanted = [...entriesOf([0], 20), ...entriesOf([1], 20)];
        const values = await store.getMany(wanted.map(([k]) => k));
        expect(values.map((v) => v?.length)).toEqual(wanted.map(([, v]) => v.length));
      } finally {
        await store.close();
      }
    },
    60_000,
  );
});
