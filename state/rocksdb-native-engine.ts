import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { StateError } from './errors.ts';
import type { StoreEntry } from './key-value-store.ts';
import { callback } from './rocksdb-npm-engine.ts';
import type {
  EngineIterator,
  EngineRange,
  EngineWrite,
  NativeCheckpoints,
  RocksDbEngine,
  RocksDbEngineOptions,
} from './rocksdb-engine.ts';

type Callback<T = void> = (err: Error | null | undefined, value?: T) => void;

/** The addon's API (state/native/cdcflow-rocksdb.cc). */
interface AddonIterator {
  next(maxEntries: number, maxBytes: number, cb: Callback<{ entries: Buffer[]; finished: boolean }>): void;
  end(): void;
}

interface AddonDb {
  open(options: Record<string, number>, cb: Callback): void;
  close(cb: Callback): void;
  getMany(keys: Buffer[], cb: Callback<(Buffer | undefined)[]>): void;
  write(keys: Buffer[], values: (Buffer | null)[], cb: Callback): void;
  deleteRange(start: Buffer, end: Buffer | undefined, cb: Callback): void;
  iterator(gte: Buffer | undefined, lt: Buffer | undefined, reverse: boolean): AddonIterator;
  flush(cb: Callback): void;
  checkpoint(dir: string, walBytes: number, cb: Callback): void;
  ingest(files: string[], move: boolean, cb: Callback): void;
  compactRange(start: Buffer | undefined, end: Buffer | undefined, cb: Callback): void;
}

interface Addon {
  Db: new (location: string) => AddonDb;
  rocksdbVersion: string;
}

const ADDON_PATH = fileURLToPath(new URL('./native/build/Release/cdcflow_rocksdb.node', import.meta.url));
let addon: Addon | undefined;

/** The addon, loaded on first use; a clear error if it was not built. */
export function loadNativeRocksDb(): Addon {
  if (addon !== undefined) return addon;
  if (!existsSync(ADDON_PATH)) {
    throw new StateError(
      `state.rocksdb.binding 'native' needs cdcflow's RocksDB addon, which is not built (${ADDON_PATH}); ` +
        'install librocksdb-dev (`apt-get install -y librocksdb-dev`) and run `npm run build:native`, ' +
        "or use the default binding ('npm')",
      { domain: 'user' },
    );
  }
  addon = createRequire(import.meta.url)(ADDON_PATH) as Addon;
  return addon;
}

/** Entries per iterator step at most (a step is one thread-pool round trip). */
const STEP_ENTRIES = 1000;
const EMPTY = Buffer.alloc(0);

/** RocksDB through cdcflow's own addon, linked against the system's librocksdb (experimental). */
export class NativeRocksDbEngine implements RocksDbEngine, NativeCheckpoints {
  private readonly db: AddonDb;

  constructor(private readonly location: string) {
    this.db = new (loadNativeRocksDb().Db)(location);
  }

  open(options: RocksDbEngineOptions): Promise<void> {
    return callback(`open of ${this.location}`, (cb) => this.db.open({ ...options }, cb));
  }

  close(): Promise<void> {
    return callback('close', (cb) => this.db.close(cb));
  }

  getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    return callback('getMany', (cb) => this.db.getMany([...keys], cb));
  }

  batch(ops: readonly EngineWrite[]): Promise<void> {
    const keys = ops.map((op) => op.key);
    const values = ops.map((op) => op.value);
    return callback('batch write', (cb) => this.db.write(keys, values, cb));
  }

  clearRange(range: EngineRange): Promise<void> {
    return callback('delete range', (cb) => this.db.deleteRange(range.gte ?? EMPTY, range.lt, cb));
  }

  iterator(range: EngineRange & { readonly reverse?: boolean }, batchBytes: number): EngineIterator {
    const it = this.db.iterator(range.gte, range.lt, range.reverse === true);
    let ended = false;
    return {
      next: async () => {
        const { entries, finished } = await callback<{ entries: Buffer[]; finished: boolean }>('scan', (cb) =>
          it.next(STEP_ENTRIES, batchBytes, cb),
        );
        const out: StoreEntry[] = [];
        for (let i = 0; i + 1 < entries.length; i += 2) out.push([entries[i] as Buffer, entries[i + 1] as Buffer]);
        return { entries: out, finished };
      },
      end: () => {
        if (!ended) it.end();
        ended = true;
        return Promise.resolve();
      },
    };
  }

  checkpoint(dir: string, walBytes = 0): Promise<void> {
    return callback(`checkpoint into ${dir}`, (cb) => this.db.checkpoint(dir, walBytes, cb));
  }

  ingest(files: readonly string[], move: boolean): Promise<void> {
    return callback('ingest', (cb) => this.db.ingest([...files], move, cb));
  }

  compactRange(range: EngineRange): Promise<void> {
    return callback('compact range', (cb) => this.db.compactRange(range.gte, range.lt, cb));
  }
}
