import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KeyValueStore } from '../../../state/key-value-store.ts';

/** Everything keyed state relies on from a store; every backend must pass it unchanged. */
export function describeStoreContract(name: string, create: () => Promise<KeyValueStore>): void {
  describe(`KeyValueStore contract: ${name}`, () => {
    let store: KeyValueStore;
    const b = (s: string): Buffer => Buffer.from(s, 'latin1');

    beforeEach(async () => {
      store = await create();
      await store.open();
    });
    afterEach(async () => {
      await store.close();
    });

    async function scanAll(prefix: Buffer): Promise<[string, string][]> {
      const out: [string, string][] = [];
      for await (const [k, v] of store.scan(prefix)) out.push([k.toString('latin1'), v.toString('latin1')]);
      return out;
    }

    it('getMany returns values in key order and undefined for absent keys', async () => {
      await store.write([
        { key: b('a'), value: b('1') },
        { key: b('c'), value: b('3') },
      ]);
      const got = await store.getMany([b('c'), b('b'), b('a')]);
      expect(got.map((v) => v?.toString())).toEqual(['3', undefined, '1']);
      expect(await store.getMany([])).toEqual([]);
    });

    it('write applies puts and deletes, later ops winning', async () => {
      await store.write([
        { key: b('k'), value: b('1') },
        { key: b('k'), value: b('2') },
        { key: b('d'), value: b('x') },
      ]);
      await store.write([
        { key: b('d'), value: null },
        { key: b('missing'), value: null },
      ]);
      expect((await store.getMany([b('k'), b('d')])).map((v) => v?.toString())).toEqual(['2', undefined]);
    });

    it('scan returns only keys with the prefix, in byte order, including 0x00 and 0xff bytes', async () => {
      const keys = [b('p\x00'), b('p\xff\xff'), b('p'), b('q'), b('o\xff'), b('p\x01a'), b('pa')];
      await store.write(keys.map((key, i) => ({ key, value: b(String(i)) })));
      expect((await scanAll(b('p'))).map(([k]) => k)).toEqual(['p', 'p\x00', 'p\x01a', 'pa', 'p\xff\xff']);
      expect((await scanAll(b('p\xff'))).map(([k]) => k)).toEqual(['p\xff\xff']);
      expect(await scanAll(b('zz'))).toEqual([]);
    });

    it('an empty prefix scans everything', async () => {
      await store.write([
        { key: b('b'), value: b('2') },
        { key: b('a'), value: b('1') },
      ]);
      expect(await scanAll(Buffer.alloc(0))).toEqual([
        ['a', '1'],
        ['b', '2'],
      ]);
    });

    it('a scan sees the data as of its start, not later writes', async () => {
      await store.write([{ key: b('s1'), value: b('old') }]);
      const it = store.scan(b('s'))[Symbol.asyncIterator]();
      const first = it.next();
      await store.write([
        { key: b('s1'), value: b('new') },
        { key: b('s2'), value: b('x') },
      ]);
      const entry = await first;
      expect(entry.done).toBe(false);
      expect(entry.value?.[1].toString()).toBe('old');
      expect((await it.next()).done).toBe(true);
    });

    it('scanBatches yields what scan does, in batches of about the byte budget, as of the call', async () => {
      const entries = Array.from({ length: 2500 }, (_, i) => ({
        key: b(`b${String(i).padStart(4, '0')}`),
        value: b('v'.repeat(100)),
      }));
      await store.write([...entries, { key: b('a'), value: b('outside') }, { key: b('c'), value: b('outside') }]);
      const batches = store.scanBatches(b('b'), 10_000);
      await store.write([
        { key: b('b9999'), value: b('later') },
        { key: b('b0000'), value: null },
      ]);
      const sizes: number[] = [];
      const seen: string[] = [];
      for await (const batch of batches) {
        sizes.push(batch.length);
        for (const [k, v] of batch) seen.push(`${k.toString('latin1')}=${v.length}`);
      }
      expect(seen).toEqual(entries.map((e) => `${e.key.toString('latin1')}=100`));
      expect(sizes.length).toBeGreaterThan(2);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(1000);
      const empty = [];
      for await (const batch of store.scanBatches(b('zz'), 10_000)) empty.push(batch);
      expect(empty).toEqual([]);
      await store.write([{ key: b('after'), value: b('1') }]); // iterators were released
    });

    it('scanBatches keeps its view across writes between its batches, memtable flushes included', async () => {
      // What a full snapshot written while processing continues relies on: the RocksDB binding's
      // iterator reads the snapshot it took when created (the memory store copies its entry list).
      const keys = Array.from({ length: 3000 }, (_, i) => b(`s${String(i).padStart(4, '0')}`));
      await store.write(keys.map((key) => ({ key, value: b('old') })));
      const scan = store.scanBatches(b('s'), 1_000);
      const batches = scan[Symbol.asyncIterator]();
      const first = await batches.next();
      expect(first.done).toBe(false);
      // ~9 MB of overwrites: more than the 4 MiB memtable, so RocksDB flushes to an SST file.
      const big = Buffer.alloc(3_000, 0x6e);
      await store.write(keys.map((key) => ({ key, value: big })));
      await store.write([
        ...keys.slice(2000).map((key) => ({ key, value: null })),
        { key: b('s9999'), value: b('new') },
      ]);
      const seen = [...(first.value ?? [])];
      for (let next = await batches.next(); next.done !== true; next = await batches.next()) seen.push(...next.value);
      expect(seen.length).toBe(keys.length);
      expect(seen.every(([, v]) => v.toString('latin1') === 'old')).toBe(true);
      await scan.close(); // idempotent after the end
      const unread = store.scanBatches(b('s'), 1_000);
      await unread.close(); // released without ever being read
      expect((await store.getMany([keys[0] as Buffer, keys[2500] as Buffer])).map((v) => v?.length)).toEqual([
        3_000,
        undefined,
      ]);
    });

    it('breaking out of a scan early releases it', async () => {
      await store.write(
        Array.from({ length: 50 }, (_, i) => ({ key: b(`k${String(i).padStart(2, '0')}`), value: b('v') })),
      );
      let seen = 0;
      for await (const _entry of store.scan(b('k'))) if (++seen === 3) break;
      expect(seen).toBe(3);
      // The store stays usable (RocksDB refuses close() with open iterators).
      await store.write([{ key: b('k99'), value: b('v') }]);
    });

    it('stored values are copies: mutating the written buffer changes nothing', async () => {
      const value = b('abc');
      await store.write([{ key: b('m'), value }]);
      value[0] = 0x7a;
      expect((await store.getMany([b('m')]))[0]?.toString()).toBe('abc');
    });

    it('clear removes every entry', async () => {
      await store.write([
        { key: b('x'), value: b('1') },
        { key: b('y'), value: b('2') },
      ]);
      await store.clear();
      expect(await scanAll(Buffer.alloc(0))).toEqual([]);
    });

    it('handles binary values and large batches', async () => {
      const ops = Array.from({ length: 2_000 }, (_, i) => {
        const key = Buffer.alloc(4);
        key.writeUInt32BE(i);
        return { key, value: Buffer.from([i & 0xff, 0, 0xff]) };
      });
      await store.write(ops);
      let count = 0;
      for await (const [k, v] of store.scan(Buffer.alloc(0))) {
        expect(k.readUInt32BE(0)).toBe(count);
        expect([...v]).toEqual([count & 0xff, 0, 0xff]);
        count++;
      }
      expect(count).toBe(2_000);
    });
  });
}
