import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeyValueStore } from '../../../state/key-value-store.ts';
import { MemoryStore } from '../../../state/memory-store.ts';
import { RocksDbStore } from '../../../state/rocksdb-store.ts';

/** Temp directories created by a test file; remove them in afterAll. */
export class TempDirs {
  private readonly dirs: string[] = [];

  async make(label: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `cdcflow-state-${label}-`));
    this.dirs.push(dir);
    return dir;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  }
}

export type StoreKind = 'memory' | 'rocksdb';

export async function makeStore(kind: StoreKind, dirs: TempDirs): Promise<KeyValueStore> {
  return kind === 'memory' ? new MemoryStore() : new RocksDbStore({ location: await dirs.make('db') });
}

/** A settable clock for TTL tests. */
export function manualClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}
