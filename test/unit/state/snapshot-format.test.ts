import { describe, expect, it } from 'vitest';
import { decodeSnapshot, encodeSnapshot, encodeSnapshotStream } from '../../../state/snapshot-format.ts';
import { stateKey, stateNamePrefix } from '../../../state/state-key-layout.ts';

const key = (state: string, group: number, user: string): Buffer =>
  stateKey(stateNamePrefix(state), group, Buffer.from(user));

async function streamed(
  entries: [Buffer, Buffer][],
  keep: (k: Buffer, v: Buffer) => boolean = () => true,
): Promise<Buffer> {
  async function* batches() {
    for (let i = 0; i < entries.length; i += 3) yield entries.slice(i, i + 3);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of encodeSnapshotStream(batches(), keep)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('snapshot file format', () => {
  // Store order: by state, then key group; so one group can appear once per state.
  const entries: [Buffer, Buffer][] = [
    [key('a', 1, 'x'), Buffer.from('1')],
    [key('a', 1, 'y'), Buffer.from('2')],
    [key('a', 5, 'x'), Buffer.from('3')],
    [key('b', 1, 'x'), Buffer.from('')],
    [key('b', 9, 'z'), Buffer.alloc(3000, 7)],
  ];

  it('a streamed full snapshot (version 2) decodes to what it was given, filtered by range', async () => {
    const data = await streamed(entries);
    expect(data[4]).toBe(2);
    const all = [...decodeSnapshot(data, { start: 0, end: 127 }, 'f')];
    expect(all.map((w) => [w.key, w.value])).toEqual(entries);
    const group1 = [...decodeSnapshot(data, { start: 1, end: 1 }, 'f')];
    expect(group1.map((w) => w.value?.toString())).toEqual(['1', '2', '']);
  });

  it('leaves out what the filter rejects; an empty state is a valid file', async () => {
    const data = await streamed(entries, (_k, v) => v.length !== 1);
    expect([...decodeSnapshot(data, { start: 0, end: 127 }, 'f')].map((w) => w.value?.length)).toEqual([0, 3000]);
    expect([...decodeSnapshot(await streamed([]), { start: 0, end: 127 }, 'f')]).toEqual([]);
  });

  it('reads version 1 (deltas) as before, deletes included', () => {
    const data = encodeSnapshot([
      { key: key('a', 3, 'k'), value: null },
      { key: key('a', 2, 'k'), value: Buffer.from('v') },
    ]);
    expect(data[4]).toBe(1);
    expect([...decodeSnapshot(data, { start: 0, end: 127 }, 'f')].map((w) => w.value?.toString() ?? null)).toEqual([
      'v',
      null,
    ]);
  });

  it('rejects truncated and unknown files with the file named', async () => {
    const data = await streamed(entries);
    expect(() => [...decodeSnapshot(data.subarray(0, data.length - 5), { start: 0, end: 127 }, 'chk-7.bin')]).toThrow(
      /chk-7.bin is corrupt: truncated section/,
    );
    const other = Buffer.from(data);
    other[4] = 9;
    expect(() => [...decodeSnapshot(other, { start: 0, end: 127 }, 'f')]).toThrow(/unsupported version 9/);
  });
});
