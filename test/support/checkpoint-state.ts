/**
 * Reads an upsert operator's table out of a job's checkpoint storage, the way a restore would see
 * it: the latest completed checkpoint or savepoint (or a chosen one), the keyed-state handles of
 * the operator's uid (one per subtask that wrote it) replayed into an in-memory backend, every
 * key's `UpsertEntry` read back.
 * What the chaos tests compare with the oracles — the state itself, not what a sink printed.
 */
import {
  LocalCheckpointStorage,
  S3CheckpointStorage,
  type CheckpointKind,
  type CheckpointRef,
  type StoredCheckpoint,
} from '../../checkpoints/index.ts';
import { checkpointSnapshotStorage } from '../../runtime/state-storage.ts';
import {
  KeyedStateBackend,
  MemoryStore,
  keyGroupRangeFor,
  type KeyedStateHandle,
  type UpsertEntry,
  upsertEntrySerializer,
} from '../../state/index.ts';

export interface LoadUpsertStateOptions {
  /** The job's `checkpoints.dir`. */
  readonly checkpointDir: string;
  readonly jobName: string;
  /** The upsert operator's uid (pin it with `.uid(...)` in the job). */
  readonly operatorUid: string;
  /** @default 'upsert-table' (what `upsert()` uses) */
  readonly stateName?: string;
  /** A checkpoint id, savepoint name or path. @default the latest completed checkpoint or savepoint */
  readonly from?: CheckpointRef;
  /** Read from this storage (e.g. an S3CheckpointStorage) instead of the local one under `checkpointDir`. */
  readonly storage?: LocalCheckpointStorage | S3CheckpointStorage;
}

export interface LoadedUpsertState<Row> {
  readonly checkpoint: {
    readonly id: number;
    readonly kind: CheckpointKind;
    readonly name?: string;
    readonly location: string;
  };
  /** Every key with an entry; tombstones (deletes) have `row === null`. */
  readonly entries: Map<unknown, UpsertEntry<Row>>;
  /** Source positions (`topic:partition` → next offset) recorded in the same checkpoint. */
  readonly sourcePositions: Map<string, string>;
}

export async function loadUpsertState<Row>(o: LoadUpsertStateOptions): Promise<LoadedUpsertState<Row>> {
  const storage = o.storage ?? new LocalCheckpointStorage({ directory: o.checkpointDir, jobName: o.jobName });
  const stored = o.from === undefined ? await storage.latestCompleted() : await storage.load(o.from);
  if (stored === undefined)
    throw new Error(`no completed checkpoint or savepoint of job '${o.jobName}' under ${o.checkpointDir}`);
  const tasks = Object.values(stored.metadata.tasks);
  // One handle per subtask that wrote the checkpoint; together they cover every key group.
  const handles = tasks
    .filter((t) => t.operatorUid === o.operatorUid && t.keyed !== undefined)
    .map((t) => t.keyed as KeyedStateHandle);
  if (handles.length === 0) {
    throw new Error(
      `${stored.location} has no keyed state of operator '${o.operatorUid}' (it has: ${tasks.map((t) => t.operatorUid).join(', ')})`,
    );
  }
  const range = keyGroupRangeFor(0, 1);
  const backend = new KeyedStateBackend({ store: new MemoryStore(), keyGroupRange: range });
  await backend.open();
  try {
    // Handle paths are relative to the checkpoint's file root (job folder, or the savepoint's own).
    const remote = storage instanceof S3CheckpointStorage ? storage : undefined;
    const fetch =
      remote === undefined
        ? undefined
        : (relative: string, path: string) => remote.downloadStateFile(relative, path, stored.remoteFileRoot);
    await backend.restore(handles, range, checkpointSnapshotStorage(stored.fileRoot, stored.fileRoot, fetch));
    const stateName = o.stateName ?? 'upsert-table';
    const table = backend.getValueState<UpsertEntry<Row>>({
      name: stateName,
      serializer: upsertEntrySerializer<Row>(),
    });
    const keys: unknown[] = [];
    for await (const key of backend.keys(stateName)) keys.push(key);
    const entries = new Map<unknown, UpsertEntry<Row>>();
    for (let i = 0; i < keys.length; i += 1_000) {
      const chunk = keys.slice(i, i + 1_000);
      await backend.prefetch(chunk);
      for (const key of chunk) {
        backend.setCurrentKey(key);
        const entry = table.value();
        if (entry !== undefined) entries.set(key, entry);
      }
    }
    return { checkpoint: describe(stored), entries, sourcePositions: positionsOf(stored) };
  } finally {
    await backend.close();
  }
}

function describe(stored: StoredCheckpoint): LoadedUpsertState<unknown>['checkpoint'] {
  const { checkpointId, kind, savepointName } = stored.metadata;
  return {
    id: checkpointId,
    kind,
    ...(savepointName === undefined ? {} : { name: savepointName }),
    location: stored.location,
  };
}

function positionsOf(stored: StoredCheckpoint): Map<string, string> {
  const positions = new Map<string, string>();
  for (const task of Object.values(stored.metadata.tasks)) {
    const source = (task.operator as { source?: { positions?: { split: string; position: string }[] } } | undefined)
      ?.source;
    for (const p of source?.positions ?? []) positions.set(p.split, p.position);
  }
  return positions;
}

/** The source positions of every completed checkpoint still in storage, newest first. */
export async function completedCheckpointPositions(
  checkpointDir: string,
  jobName: string,
): Promise<{ readonly id: number; readonly positions: Map<string, string> }[]> {
  const storage = new LocalCheckpointStorage({ directory: checkpointDir, jobName });
  const { checkpoints } = await storage.list();
  return [...checkpoints]
    .reverse()
    .map((stored) => ({ id: stored.metadata.checkpointId, positions: positionsOf(stored) }));
}
