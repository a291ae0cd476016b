import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import {
  DecodePool,
  DecodePoolError,
  withoutTsx,
  workerExecArgv,
} from '../../../../../operators/sources/kafka/decode-pool.ts';
import { decodeDebeziumJson } from '../../../../../operators/sources/kafka/debezium-json.ts';
import { createDecoder } from '../../../../../operators/sources/kafka/message-decoder.ts';
import type { Decoded, RawMessage } from '../../../../../operators/sources/kafka/raw-message.ts';
import { generateWorkload } from '../../../../../scripts/workload/generator.ts';
import { envelope, message } from './messages.ts';

/** The reference workload as consumer messages: changes, tombstones, non-ASCII rows. */
function workloadMessages(events: number): RawMessage[] {
  const out: RawMessage[] = [];
  for (const r of generateWorkload({ keys: 50, events })) {
    out.push({
      topic: 'cdc.ecommerce.orders',
      partition: r.partition,
      offset: String(out.length),
      key: r.key,
      value: r.value,
      timestampMs: 1_700_000_000_000 + out.length,
    });
  }
  return out;
}

function chunks<T>(items: readonly T[], sizes: readonly number[]): T[][] {
  const out: T[][] = [];
  for (let at = 0, i = 0; at < items.length; i++) {
    const size = sizes[i % sizes.length] as number;
    out.push(items.slice(at, at + size));
    at += size;
  }
  return out;
}

describe('DecodePool', () => {
  const pools: DecodePool<unknown>[] = [];
  const pool = (workers: number, minBatchSize?: number): DecodePool<unknown> => {
    const p = new DecodePool<unknown>({ workers, ...(minBatchSize === undefined ? {} : { minBatchSize }) });
    pools.push(p);
    return p;
  };
  afterEach(async () => {
    for (const p of pools.splice(0)) await p.close();
  });

  it('decodes exactly as the calling thread would, and resolves in submission order', async () => {
    const messages = workloadMessages(3_000);
    // Big and small batches alternate over two workers (small ones decode inline), so later
    // batches routinely finish first; their results must still arrive in order.
    const batches = chunks(messages, [900, 5, 40, 1, 400, 60]);
    const p = pool(2);
    const arrivals: number[] = [];
    const results = await Promise.all(batches.map((b, i) => p.decodeBatch(b).then((d) => (arrivals.push(i), d))));
    expect(arrivals).toEqual(batches.map((_, i) => i));
    expect(results.flat()).toEqual(messages.map((m) => decodeDebeziumJson(m)));
    expect(results.flat().some((d) => d.kind === 'tombstone')).toBe(true);
    expect(p.threads).toBe(2);
  });

  it('returns dead letters with the original key and value Buffers', async () => {
    const good = message(envelope());
    const bad: RawMessage[] = [
      { ...message('{"op": "c", "trunc'), offset: '7' },
      { ...message(Buffer.from([0xff, 0xfe, 0x00])), offset: '8' },
      { ...message(envelope({ op: 'x' })), offset: '9' },
      { ...message(envelope(), Buffer.from([0xc3, 0x28])), offset: '10' },
    ];
    const batch = [good, ...bad, good];
    const decoded = await pool(1, 1).decodeBatch(batch);
    expect(decoded).toEqual(batch.map((m) => decodeDebeziumJson(m)));
    const letters = decoded
      .filter((d): d is Extract<Decoded<unknown>, { kind: 'dead-letter' }> => d.kind === 'dead-letter')
      .map((d) => d.letter);
    expect(letters.map((l) => [l.offset, l.errorKind])).toEqual([
      ['7', 'undecodable'],
      ['8', 'undecodable'],
      ['9', 'unknown-op'],
      ['10', 'undecodable'],
    ]);
    letters.forEach((letter, i) => {
      const original = bad[i] as RawMessage;
      expect(Buffer.isBuffer(letter.key) && Buffer.isBuffer(letter.value)).toBe(true);
      expect(letter.value?.equals(original.value as Buffer)).toBe(true);
      expect(letter.key?.equals(original.key as Buffer)).toBe(true);
      expect(letter.timestampMs).toBe(original.timestampMs);
    });
  });

  it('close() terminates the workers and rejects what is still in flight', async () => {
    const p = pool(1, 1);
    await p.decodeBatch(workloadMessages(100));
    expect(p.threads).toBe(1);
    const inFlight = p.decodeBatch(workloadMessages(2_000));
    await p.close();
    await expect(inFlight).rejects.toBeInstanceOf(DecodePoolError);
    expect(p.threads).toBe(0);
    await expect(p.decodeBatch([message(envelope())])).rejects.toThrow(/closed/);
  });

  it('does not keep the process alive when idle, even if never closed', async () => {
    const root = fileURLToPath(new URL('../../../../../', import.meta.url));
    const script = [
      "import { DecodePool } from './operators/sources/kafka/decode-pool.ts';",
      'const pool = new DecodePool({ workers: 1, minBatchSize: 1 });',
      "const value = Buffer.from(JSON.stringify({ op: 'c', before: null, after: { id: 1 }, source: { lsn: 1, ts_ms: 1, db: 'd', schema: 's', table: 't' } }));",
      "const out = await pool.decodeBatch([{ topic: 't', partition: 0, offset: '0', key: null, value, timestampMs: 0 }]);",
      'console.log(out[0].kind);',
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('exit', (c) => (clearTimeout(timer), resolve(c)));
    });
    expect({ code, stdout: stdout.trim(), stderr: stderr.includes('Error') ? stderr : '' }).toEqual({
      code: 0,
      stdout: 'change',
      stderr: '',
    });
  });
});

describe('createDecoder', () => {
  it('decodes on the calling thread with workers: 0 and through a pool otherwise', async () => {
    const inline = createDecoder({ format: 'json' }, { workers: 0 });
    const pooled = createDecoder({ format: 'json' }, { workers: 1 });
    expect(pooled).toBeInstanceOf(DecodePool);
    try {
      const messages = workloadMessages(200);
      expect(await pooled.decodeBatch(messages)).toEqual(await inline.decodeBatch(messages));
    } finally {
      await Promise.all([inline.close(), pooled.close()]);
    }
  });

  it('rejects a negative worker count', () => {
    expect(() => createDecoder({ format: 'json' }, { workers: -1 })).toThrow(RangeError);
  });
});

describe('workerExecArgv', () => {
  const started = (execArgv: string[]) =>
    new Promise<void>((resolve, reject) => {
      try {
        const worker = new Worker('require("node:worker_threads").parentPort.postMessage("up")', {
          eval: true,
          execArgv,
        });
        worker.once('message', () => void worker.terminate().then(() => resolve()));
        worker.once('error', reject);
      } catch (error) {
        reject(error as Error);
      }
    });

  it('drops the heap flags `cdcflow run` starts a job with: a worker refuses them in execArgv (a job at parallelism 2 failed every attempt)', async () => {
    const parent = [
      '--max-semi-space-size=32',
      '--import',
      '/x/node_modules/tsx/dist/esm/index.mjs',
      '--max-old-space-size',
      '4096',
      '--enable-source-maps',
    ];
    // What the workers were given before: only tsx removed.
    await expect(started(withoutTsx(parent))).rejects.toThrow(/invalid execArgv/);
    expect(workerExecArgv(parent)).toEqual(['--enable-source-maps']);
    await started(workerExecArgv(parent));
  });
});
