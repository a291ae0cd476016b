/**
 * npm run bench -- state-scale [--keys 10000000] [--update-seconds 60] [--updates-per-second 10000] [--interval-ms 1000]
 *                               [--local-recovery 1|0] [--also-replay] [--prefill] [--restore-range 0-63]
 *                               [--binding npm|native|both] [--link 0] [--write-buffer-mb 4] [--wal-mb 0]
 *                               [--native-mode changelog|sst] [--materialize-s 10] [--materialize-mb 64]
 *
 * WORKLOAD.md preset L at the state layer: `--keys` keys inserted (~600-byte values, the
 * reference row), then ~10k random keys updated per 1 s checkpoint while records flow. Reports
 * per-checkpoint duration (barrier → file durable) and bytes, full snapshots, checkpoints per
 * minute while updating; then SIGKILLs the process and restarts it from the last completed
 * checkpoint: time until processing again and until the first checkpoint again; peak RSS of
 * both processes (restore included). The restart reopens the killed process's RocksDB directory
 * (local recovery, `--local-recovery 0` turns it off); `--also-replay` then restarts once more
 * into an empty directory, replaying the files as a restart on another machine would. `--prefill`
 * writes the keys straight into the store (sorted batches of 10k) and takes one full checkpoint,
 * instead of loading them through the operator path with a checkpoint per second (~7 min per 1M
 * keys on the shared machine): the way to reach 10M keys here. `--restore-range a-b` restores only
 * key groups a…b (a rescale: 0-63 is subtask 0 of 2) — with `--local-recovery 0`, since local
 * recovery needs the same range. Everything runs in child processes (state-scale-child.ts)
 * under a temp directory removed at the end. Not the whole job: no Kafka, no sink — the state
 * and checkpoint cost of a keyed operator at that size. `--binding native` runs it on cdcflow's own
 * RocksDB addon, whose checkpoints are RocksDB checkpoints (SST files); `both` runs the whole bench
 * once per binding, one after the other, in one invocation. With native checkpoints a restore into
 * an empty directory hard-links the SST files from the (local) checkpoint folder; `--link 0` makes
 * it copy them through the streamed read instead, as a download from S3 would. `--write-buffer-mb`
 * sets RocksDB's memtable size; `--wal-mb` lets a native checkpoint copy the WAL instead of
 * flushing while the WAL is below that size. `--native-mode` picks the native binding's checkpoints:
 * `changelog` (default: a delta per checkpoint, RocksDB checkpoints materialised in the background
 * every `--materialize-s` or `--materialize-mb` of deltas) or `sst` (every checkpoint a RocksDB checkpoint).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { fmt, machine, median, size } from './bench-format.ts';

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '10000000' },
    'update-seconds': { type: 'string', default: '60' },
    'updates-per-second': { type: 'string', default: '10000' },
    'interval-ms': { type: 'string', default: '1000' },
    dir: { type: 'string' },
    'local-recovery': { type: 'string', default: '1' },
    'also-replay': { type: 'boolean', default: false },
    prefill: { type: 'boolean', default: false },
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
let binding = 'npm';

interface Line {
  readonly type: string;
  readonly peakRssMb: number;
  readonly [field: string]: unknown;
}

const childScript = new URL('./state-scale-child.ts', import.meta.url).pathname;

/** Starts the child; `onLine` sees each JSON line; resolves with all lines when it exits. */
function child(
  mode: string,
  dir: string,
  onLine: (line: Line, kill: () => void) => void,
  localRecovery = values['local-recovery'] as string,
): Promise<Line[]> {
  const args = [
    '--import',
    'tsx',
    childScript,
    '--mode',
    mode,
    '--dir',
    dir,
    '--keys',
    values.keys as string,
    '--updates-per-second',
    values['updates-per-second'] as string,
    '--interval-ms',
    values['interval-ms'] as string,
    '--local-recovery',
    localRecovery,
    '--prefill',
    values.prefill ? '1' : '0',
    '--restore-range',
    values['restore-range'] as string,
    '--binding',
    binding,
    '--link',
    values.link as string,
    '--wal-mb',
    values['wal-mb'] as string,
    '--write-buffer-mb',
    values['write-buffer-mb'] as string,
    '--native-mode',
    values['native-mode'] as string,
    '--materialize-s',
    values['materialize-s'] as string,
    '--materialize-mb',
    values['materialize-mb'] as string,
  ];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Line[] = [];
  createInterface({ input: proc.stdout }).on('line', (text) => {
    if (!text.startsWith('{')) return;
    const line = JSON.parse(text) as Line;
    lines.push(line);
    onLine(line, () => proc.kill('SIGKILL'));
  });
  return new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.on('exit', (code, signal) =>
      code === 0 || signal === 'SIGKILL'
        ? resolve(lines)
        : reject(new Error(`${mode} child exited with ${code ?? signal}`)),
    );
  });
}

const pct = (xs: readonly number[], p: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;

function checkpointSummary(label: string, lines: readonly Line[]): void {
  const ms = lines.map((l) => l['ms'] as number);
  const bytes = lines.map((l) => l['bytes'] as number);
  const fulls = lines.filter((l) => l['kind'] === 'full');
  console.log(
    `${label}: ${lines.length} checkpoints (${fulls.length} full); duration median ${fmt(median(ms))} ms, p95 ${fmt(pct(ms, 0.95))} ms, max ${fmt(Math.max(...ms))} ms; ` +
      `bytes median ${size(median(bytes))}, max ${size(Math.max(...bytes))}; barrier (synchronous part) max ${fmt(Math.max(...lines.map((l) => l['barrierMs'] as number)), 1)} ms`,
  );
  if (fulls.length > 0)
    console.log(
      `  full snapshots: ${fulls.map((l) => `#${String(l['id'])} ${size(l['bytes'] as number)} in ${fmt(l['ms'] as number)} ms`).join(', ')}`,
    );
  // A background rebase shows as a new chain start that is not the checkpoint's own file.
  const rebases = lines.filter((l, i) => i > 0 && l['baseId'] !== lines[i - 1]?.['baseId'] && l['baseId'] !== l['id']);
  if (rebases.length > 0)
    console.log(
      `  background rebases / materialisations adopted: ${rebases.map((l) => `state of #${String(l['baseId'])} (${size(l['baseBytes'] as number)}, ${size(l['baseNew'] as number)} new) by #${String(l['id'])}`).join(', ')}`,
    );
  const busy = lines.filter((l) => l['materializing'] === true).map((l) => l['ms'] as number);
  const quiet = lines.filter((l) => l['materializing'] !== true).map((l) => l['ms'] as number);
  const spread = (xs: readonly number[]): string =>
    xs.length === 0
      ? 'none'
      : `${xs.length}, median ${fmt(median(xs))} / p95 ${fmt(pct(xs, 0.95))} / max ${fmt(Math.max(...xs))} ms`;
  if (busy.length > 0)
    console.log(`  checkpoints with a rebase / materialisation in flight: ${spread(busy)}; without: ${spread(quiet)}`);
  const chains = lines.map((l) => l['chain'] as number);
  const deltas = lines.map((l) => l['deltas'] as number);
  console.log(
    `  chain length (files a restore reads): median ${fmt(median(chains))}, max ${fmt(Math.max(...chains))}; deltas in it: median ${fmt(median(deltas))}, max ${fmt(Math.max(...deltas))}`,
  );
}

async function recover(label: string, dir: string, localRecovery: string): Promise<void> {
  const recovered = await child('recover', dir, () => undefined, localRecovery);
  const at = (type: string): Line | undefined => recovered.find((l) => l.type === type);
  const restored = at('restored');
  console.log(
    `${label} (from checkpoint ${String(restored?.['fromCheckpoint'])}, ${String(restored?.['files'])} files, ${restored?.['local'] === true ? 'local directory reopened' : restored?.['sst'] === true ? `SST files opened, ${String(restored['deltas'])} deltas replayed` : 'files replayed'}): restore ${fmt((restored?.['restoreMs'] as number) / 1000, 2)} s, ` +
      `processing again after ${fmt((at('processing')?.['ms'] as number) / 1000, 2)} s, first checkpoint again after ${fmt((at('first-checkpoint')?.['ms'] as number) / 1000, 2)} s (from process start)`,
  );
  const first = at('checkpoint');
  if (first !== undefined)
    console.log(
      `  first checkpoint after the restore: ${String(first['kind'])}, ${size(first['bytes'] as number)} in ${fmt(first['ms'] as number)} ms`,
    );
  console.log(
    `  peak RSS of the recovering process (restore included): ${fmt(Math.max(...recovered.map((l) => l.peakRssMb)))} MB`,
  );
}

async function main(): Promise<void> {
  const bindings = values.binding === 'both' ? ['npm', 'native'] : [values.binding === 'native' ? 'native' : 'npm'];
  for (const b of bindings) {
    binding = b;
    await benchOne(values.dir === undefined ? undefined : join(values.dir, b));
  }
}

async function benchOne(givenDir: string | undefined): Promise<void> {
  const dir = givenDir ?? (await mkdtemp(join(tmpdir(), 'cdcflow-state-scale-')));
  const updateMs = Number(values['update-seconds']) * 1000;
  console.log(
    `state-scale [binding ${binding}${binding === 'native' ? `, ${String(values['native-mode'])} mode` : ''}]: ${fmt(Number(values.keys))} keys, ~${values['updates-per-second']} updates/s for ${values['update-seconds']} s, checkpoint every ${values['interval-ms']} ms; ${machine()}`,
  );
  try {
    let updatingSince = 0;
    let timer: NodeJS.Timeout | undefined;
    const run = await child('run', dir, (line, kill) => {
      if (line.type === 'loaded') console.log(`loaded in ${fmt((line['ms'] as number) / 1000, 1)} s`);
      if (line.type === 'prefill')
        console.log(`  prefill: ${fmt(line['keys'] as number)} keys after ${fmt((line['ms'] as number) / 1000, 1)} s`);
      if (line.type === 'updating') {
        updatingSince = performance.now();
        timer = setTimeout(kill, updateMs);
      }
    });
    clearTimeout(timer);
    const checkpoints = run.filter((l) => l.type === 'checkpoint');
    const load = checkpoints.filter((l) => l['phase'] === 'load');
    const update = checkpoints.filter((l) => l['phase'] === 'update');
    if (load.length > 0) checkpointSummary('while loading', load);
    if (update.length > 0) checkpointSummary('while updating', update);
    const minutes = (performance.now() - updatingSince) / 60_000;
    const updatesDone =
      ((update.at(-1)?.['updated'] as number | undefined) ?? 0) -
      ((load.at(-1)?.['updated'] as number | undefined) ?? 0);
    console.log(
      `checkpoints completed per minute while updating: ${fmt(update.length / minutes, 1)} (updates applied: ${fmt(updatesDone / (minutes * 60))}/s)`,
    );
    console.log(`peak RSS before the kill: ${fmt(Math.max(...run.map((l) => l.peakRssMb)))} MB`);

    await recover('recovery after SIGKILL', dir, values['local-recovery'] as string);
    if (values['also-replay'])
      await recover('restart elsewhere (replay of the files into an empty directory)', dir, '0');
  } finally {
    if (givenDir === undefined) await rm(dir, { recursive: true, force: true });
  }
}

await main();
