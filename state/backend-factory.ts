import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyedStateBackendOptions } from './backend-options.ts';
import { StateError } from './errors.ts';
import type { KeyGroupRange } from './key-groups.ts';
import { KeyedStateBackend } from './keyed-state-backend.ts';
import type { KeyValueStore } from './key-value-store.ts';
import { MemoryStore } from './memory-store.ts';
import { RocksDbStore, type RocksDbMemoryOptions } from './rocksdb-store.ts';

export type StateBackendKind = 'rocksdb' | 'memory';

export interface CreateKeyedBackendRequest {
  readonly jobName: string;
  readonly operatorUid: string;
  readonly subtaskIndex: number;
  readonly keyGroupRange: KeyGroupRange;
  /** @default 'rocksdb' */
  readonly backend?: StateBackendKind;
  /** Root of local working state (RocksDB directories); required for 'rocksdb'. */
  readonly localDir?: string;
  /** Memory bounds of the RocksDB store (block cache, write buffers, open files). */
  readonly rocksdb?: RocksDbMemoryOptions;
  /** Passed through to the backend (cache size, TTL clock, snapshot chain tuning, …). */
  readonly tuning?: Omit<KeyedStateBackendOptions, 'store' | 'keyGroupRange' | 'snapshotNamePrefix'>;
}

/** Creates opened keyed backends; the runtime holds one factory per job. */
export interface StateBackendFactory {
  createKeyedBackend(request: CreateKeyedBackendRequest): Promise<KeyedStateBackend>;
}

/** Safe in a path and a file name, and still readable. */
function segment(name: string): string {
  return encodeURIComponent(name).replace(/\./g, '%2E');
}

/**
 * The default factory. Local state starts empty: a RocksDB directory left by an earlier run is
 * deleted, or — with local recovery (the default) — kept aside until the first barrier, because
 * `restore()` to a checkpoint that run took reopens it instead of replaying the files. Snapshot names are prefixed with job, operator and subtask so subtasks never
 * collide in shared checkpoint storage.
 */
export class DefaultStateBackendFactory implements StateBackendFactory {
  async createKeyedBackend(request: CreateKeyedBackendRequest): Promise<KeyedStateBackend> {
    const kind = request.backend ?? 'rocksdb';
    const path = [segment(request.jobName), segment(request.operatorUid), `subtask-${request.subtaskIndex}`];
    let store: KeyValueStore;
    if (kind === 'memory') {
      store = new MemoryStore();
    } else {
      if (request.localDir === undefined) {
        throw new StateError('the rocksdb state backend needs localDir (a directory for working state)', {
          domain: 'user',
        });
      }
      const location = join(request.localDir, ...path);
      const localRecovery = request.rocksdb?.localRecovery ?? true;
      // With local recovery the store moves the old directory aside itself (a restore may use it).
      if (!localRecovery) await rm(location, { recursive: true, force: true });
      store = new RocksDbStore({ ...request.rocksdb, location, localRecovery });
    }
    const backend = new KeyedStateBackend({
      ...request.tuning,
      store,
      keyGroupRange: request.keyGroupRange,
      snapshotNamePrefix: path.join('/'),
    });
    await backend.open();
    return backend;
  }
}
