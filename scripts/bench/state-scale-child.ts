/**
 * The process `state-scale-bench.ts` runs, SIGKILLs and restarts. Keyed state on RocksDB as the
 * projection job holds it (one value of ~600 bytes per key, all 128 key groups in one subtask),
 * checkpointed every `--interval-ms` the way the runtime does it: the barrier (`beginSnapshot`)
 * between two batches, the file written while batches go on, one checkpoint in flight; a
 * completed checkpoint's handle is written durably to `latest.json` (the coordinator's metadata).
 *   run:     insert `--keys` keys, then update `--updates-per-second` random keys per second
 *            until killed; prints one JSON line per checkpoint and `{ type: 'updating' }`.
 *   recover: restore `latest.json`, update again, print when processing and the first checkpoint
 *            are back, and exit. With `--local-recovery 1` (default) both modes use one RocksDB
 *            directory, so the restore reopens the killed process's directory; with 0 it replays
 *            the checkpoint's files into an empty one.
 * Every line carries the process's peak RSS so far.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KeyedStateBackend } from '../../state/keyed-state-backend.ts';
import { RocksDbStore } from '../../state/rocksdb-store.ts';
import { LocalFsSnapshotStorage, type SnapshotStorage } from '../../state/snapshot-storage.ts';
import { writeFileDurably } from '../../state/durable-fs.ts';
import { newBytesOf, type KeyedStateHandle } from '../../state/snapshot-handle.ts';
import type { ValueState } from '../../state/descriptors.ts';
import { encodeKey } from '../../state/key-encoder.ts';
import { keyGroupFor } from '../../state/key-groups.ts';
import { stateKey, stateNamePrefix } from '../../state/state-key-layout.ts';
import { wrapValue } from '../../state/ttl-envelope.ts';
import type { StoreWrite } from '../../state/key-value-store.ts';

const started = performance.now();
const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'run' },
    dir: { type: 'string' },
    keys: { type: 'string', default: '10000000' },
    'updates-per-second': { type: 'string', default: '10000' },
    'interval-ms': { type: 'string', default: '1000' },
    'cache-mb': { type: 'string', default: '8' },
    'local-recovery': { type: 'string', default: '1' },
    prefill: { type: 'string', default: '0' },
    'restore-range': { type: 'string', default: '0-127' },
    binding: { type: 'string', default: 'npm' },
    link: { type: 'string', default: '1' },
    'wal-mb': { type: 'string', default: '0' },
    'write-buffer-mb': { type: 'string', default: '4' },
    'native-mode': { type: 'string', default: 'changelog' },
    'materialize-s': { type: 'string', default: '10' },
    'materialize-mb': { type: 'string', default: '64' },
  },
});
const BINDING = values.binding === 'native' ? 'native' : 'npm';
const LOCAL_RECOVERY = values['local-recovery'] === '1';
const dir = values.dir as string;
const KEYS = Number(values.keys);
const UPDATES_PER_SECOND = Number(values['updates-per-second']);
const INTERVAL_MS = Number(values['interval-ms']);
const BATCH = 1000;
// recover: the key groups restored, e.g. 0-63 for subtask 0 after a rescale from 1 to 2.
const [rangeStart, rangeEnd] = (values['restore-range'] as string).split('-').map(Number) as [number, number];
const RANGE = values.mode === 'recover' ? { start: rangeStart, end: rangeEnd } : { start: 0, end: 127 };
const owned = (key: number): boolean => {
  const group = keyGroupFor(encodeKey(key), 128);
  return group >= RANGE.start && group <= RANGE.end;
};
/** `BATCH` random existing keys of our key groups. */
const randomKeys = (): number[] => {
  const keys: number[] = [];
  while (keys.length < BATCH) {
    const key = Math.floor(Math.random() * KEYS);
    if (owned(key)) keys.push(key);
  }
  return keys;
};
const VALUE_BYTES = 600;

const peakRssMb = (): number => Math.round(process.resourceUsage().maxRSS / 1024);
const emit = (line: Record<string, unknown>): void =>
  void process.stdout.write(`${JSON.stringify({ ...line, peakRssMb: peakRssMb() })}\n`);

// Random bytes, so RocksDB's compression does not make the state smaller than a real one.
const pool = Buffer.from(Array.from({ length: 1 << 16 }, () => Math.floor(Math.random() * 256)));
const valueOf = (key: number, round: number): Buffer => {
  const at = (key * 131 + round * 17) % (pool.length - VALUE_BYTES);
  const value = Buffer.from(pool.subarray(at, at + VALUE_BYTES));
  value.writeUInt32BE(round, 0);
  return value;
};
const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };

const local = new LocalFsSnapshotStorage(join(dir, 'checkpoints'));
// `--link 0`: a storage without local paths, so a RocksDB-checkpoint restore copies every file
// through the streamed read as a download from S3 would, instead of hard-linking it.
const storage: SnapshotStorage =
  values.link === '0'
    ? {
        write: (n, d) => local.write(n, d),
        writeChunks: (n, c) => local.writeChunks(n, c),
        read: (p) => local.read(p),
        readChunks: (p) => local.readChunks(p),
      }
    : local;
// With local recovery the restarted process finds the killed one's directory, as on one machine;
// without, it starts from an empty directory and replays the checkpoint's files.
const store = new RocksDbStore({
  location: join(dir, LOCAL_RECOVERY ? 'db' : `db-${values.mode}`),
  cacheSizeBytes: Number(values['cache-mb']) << 20,
  localRecovery: LOCAL_RECOVERY,
  binding: BINDING,
  checkpointWalBytes: Number(values['wal-mb']) << 20,
  writeBufferSizeBytes: Number(values['write-buffer-mb']) << 20,
  nativeCheckpoints: values['native-mode'] === 'sst' ? 'sst' : 'changelog',
  materializeIntervalMs: Number(values['materialize-s']) * 1000,
  materializeDeltaBytes: Number(values['materialize-mb']) << 20,
});
const backend = new KeyedStateBackend({
  store,
  keyGroupRange: RANGE,
});
await backend.open();
const state: ValueState<Buffer> = backend.getValueState<Buffer>({ name: 'orders', serializer: raw });

let nextId = 1;
let inFlight: Promise<void> | undefined;
let lastBarrier = performance.now();
let phase = values.mode === 'run' ? 'load' : 'recovered';
let onCheckpoint: ((id: number) => void) | undefined;
let closing = false;
let updated = 0;

/** At a batch boundary: start a checkpoint if the interval passed and none is in flight. */
async function maybeCheckpoint(): Promise<void> {
  if (inFlight !== undefined || performance.now() - lastBarrier < INTERVAL_MS) return;
  const id = nextId++;
  const barrierAt = (lastBarrier = performance.now());
  // A background rebase / materialisation running at this barrier (or started by it).
  const busyBefore = backend.rebaseStatus !== undefined;
  const { done } = await backend.beginSnapshot(id, storage);
  const barrierMs = performance.now() - barrierAt;
  const materializing = busyBefore || backend.rebaseStatus !== undefined;
  inFlight = done.then(async (handle: KeyedStateHandle) => {
    await writeFileDurably(join(dir, 'latest.json'), Buffer.from(JSON.stringify(handle)));
    backend.notifyCheckpointComplete(id);
    const last = handle.files[handle.files.length - 1];
    // The chain's base: a full file, or a RocksDB checkpoint (SST files, some older than its barrier).
    const baseFiles = handle.files.filter((f) => f.kind !== 'delta');
    const baseId = Math.max(...baseFiles.map((f) => f.checkpointId));
    const baseBytes = baseFiles.reduce((sum, f) => sum + f.bytes, 0);
    const baseNew = baseFiles.reduce((sum, f) => sum + (f.checkpointId === baseId ? f.bytes : 0), 0);
    emit({
      type: 'checkpoint',
      phase,
      id,
      kind: last?.kind,
      ms: performance.now() - barrierAt,
      barrierMs,
      materializing,
      bytes: newBytesOf(handle),
      chain: handle.files.length,
      deltas: handle.files.filter((f) => f.kind === 'delta').length,
      baseId,
      baseBytes,
      baseNew,
      updated,
    });
    inFlight = undefined;
    onCheckpoint?.(id);
  });
  inFlight.catch((error: unknown) => {
    if (closing) return; // a checkpoint cancelled by the close below
    console.error(error);
    process.exit(1);
  });
}

async function updateBatch(keys: readonly number[], round: number): Promise<void> {
  await backend.prefetch(keys);
  for (const key of keys) {
    backend.setCurrentKey(key);
    state.update(valueOf(key, round));
  }
  await backend.flush();
  updated += keys.length;
  await maybeCheckpoint();
}

/** ~UPDATES_PER_SECOND random existing keys per second, in batches, forever (or until `stop`). */
async function updateLoop(stop: () => boolean): Promise<void> {
  const begun = performance.now();
  let done = 0;
  for (let round = 2; !stop(); round++) {
    const due = ((performance.now() - begun) / 1000) * UPDATES_PER_SECOND;
    if (done >= due) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      await maybeCheckpoint();
      continue;
    }
    const keys = randomKeys();
    await updateBatch(keys, round);
    done += BATCH;
  }
}

if (values.mode === 'run') {
  if (values.prefill === '1') {
    // Straight into the store in batches of 10k, as state entries are laid out; the first checkpoint
    // is then a full snapshot of it. Loading through the operator path takes ~7 min per 1M keys here.
    const prefix = stateNamePrefix('orders');
    for (let i = 0; i < KEYS; i += 10_000) {
      const writes: StoreWrite[] = [];
      for (let k = i; k < Math.min(i + 10_000, KEYS); k++) {
        const keyBytes = encodeKey(k);
        writes.push({
          key: stateKey(prefix, keyGroupFor(keyBytes, 128), keyBytes),
          value: wrapValue(valueOf(k, 1), undefined),
        });
      }
      await store.write(writes);
      if (i % 1_000_000 === 0) emit({ type: 'prefill', keys: i, ms: performance.now() - started });
    }
    lastBarrier = performance.now() - INTERVAL_MS;
    await maybeCheckpoint();
  }
  for (let i = values.prefill === '1' ? KEYS : 0; i < KEYS; i += BATCH) {
    await updateBatch(
      Array.from({ length: Math.min(BATCH, KEYS - i) }, (_, k) => i + k),
      1,
    );
  }
  emit({ type: 'loaded', ms: performance.now() - started });
  await inFlight;
  phase = 'update';
  emit({ type: 'updating' });
  await updateLoop(() => false);
} else {
  const handle = JSON.parse(await readFile(join(dir, 'latest.json'), 'utf8')) as KeyedStateHandle;
  nextId = handle.checkpointId + 1;
  const restoreAt = performance.now();
  await backend.restore([handle], RANGE, storage);
  // A replay starts a new lineage; a local recovery continues the checkpoint's.
  const local =
    handle.localRecovery !== undefined && store.localRecovery?.incarnation === handle.localRecovery.incarnation;
  emit({
    type: 'restored',
    ms: performance.now() - started,
    restoreMs: performance.now() - restoreAt,
    fromCheckpoint: handle.checkpointId,
    files: handle.files.length,
    deltas: handle.files.filter((f) => f.kind === 'delta').length,
    local,
    sst: handle.format === 'rocksdb-checkpoint',
  });
  let checkpointed = false;
  onCheckpoint = () => void (checkpointed = true);
  lastBarrier = performance.now() - INTERVAL_MS; // the first checkpoint is due with the first batch
  await updateBatch(randomKeys(), 1);
  emit({ type: 'processing', ms: performance.now() - started });
  await updateLoop(() => checkpointed);
  emit({ type: 'first-checkpoint', ms: performance.now() - started });
  closing = true;
  await backend.close();
  process.exit(0);
}
