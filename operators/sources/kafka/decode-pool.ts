/**
 * Decodes Debezium JSON batches on worker threads, so parsing no longer caps a job at one core.
 *
 * What crosses the thread boundary is chosen for the *calling* thread's cost, since that thread
 * also runs the whole job:
 * - in: the batch's key/value bytes packed into one buffer that is transferred, not copied;
 * - out: one JSON string per batch, parsed with a single `JSON.parse`. Structured clone of the
 *   decoded objects would be simpler but deserialising it costs the caller about as much as
 *   decoding the batch itself; re-parsing compact JSON costs about a third of that.
 * - dead letters come back as `{errorKind, reason}` and are rebuilt around the caller's original
 *   Buffers, so their bytes are the consumer's, untouched.
 *
 * Results resolve in submission order, whichever worker finishes first, so a caller that submits
 * a partition's batches in order receives them in order. Small batches are decoded on the calling
 * thread (a round trip costs more than they do), still in submission order. Idle workers are
 * unref'd: a pool that was never closed does not keep the process alive; `close()` terminates them.
 * A row value of -0 comes back as 0 (JSON); nothing else differs from decoding on the caller.
 *
 * What it buys is limited, and the pool is off by default (message-decoder.ts). Per event on the
 * workload: decoding on the calling thread ~9–11 µs; with the pool the caller still spends ~7–9 µs
 * (packing + the one JSON.parse that builds the objects on its heap) and the worker ~15 µs. So the
 * caller saves at most ~25% of decoding while the process burns more CPU in total; it pays only
 * where decoding dominates, cores are spare, and several batches are in flight (the kafkajs
 * fetcher hands over one batch at a time and the source awaits its decoding before the next).
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CdcflowError } from '../../../state/errors.ts';
import { deadLetter } from './dead-letter.ts';
import { DecimalColumns, type DebeziumDecimalOptions } from './debezium-decimals.ts';
import { decodeDebeziumJson } from './debezium-json.ts';
import type { DecodeRequest, DecodeResponse, WireDeadLetter } from './decode-worker.ts';
import type { Decoded, RawMessage } from './raw-message.ts';

export interface DecodePoolOptions {
  /** Worker threads, started on first use. Must be >= 1. */
  readonly workers: number;
  /** Batches with fewer messages are decoded on the calling thread. @default 32 */
  readonly minBatchSize?: number;
  /** Decimal columns (see debezium-decimals.ts); sent to the workers with each batch. */
  readonly decimals?: DebeziumDecimalOptions;
}

/** Thrown when a decode worker crashes or the pool is used after `close()`. Retriable: a restarted job gets a fresh pool. */
export class DecodePoolError extends CdcflowError {
  constructor(message: string, cause?: unknown) {
    super(message, { domain: 'internal', retriable: true, ...(cause === undefined ? {} : { cause }) });
  }
}

interface Job {
  readonly messages: readonly RawMessage[];
  readonly resolve: (decoded: Decoded<unknown>[]) => void;
  readonly reject: (error: Error) => void;
}

interface Slot {
  readonly worker: Worker;
  readonly jobs: Map<number, Job>;
  dead: boolean;
}

export class DecodePool<Row> {
  private readonly slots: Slot[] = [];
  private readonly minBatchSize: number;
  private readonly decimals: DecimalColumns;
  private nextId = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: DecodePoolOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 1)
      throw new RangeError(`DecodePool needs workers >= 1, got ${options.workers}`);
    this.minBatchSize = options.minBatchSize ?? 32;
    this.decimals = new DecimalColumns(options.decimals);
  }

  /** Worker threads currently running. */
  get threads(): number {
    return this.slots.filter((s) => !s.dead).length;
  }

  /** Decodes a batch; resolves after every batch submitted before it. */
  decodeBatch(messages: readonly RawMessage[]): Promise<Decoded<Row>[]> {
    if (this.closed) return Promise.reject(new DecodePoolError('the decode pool is closed'));
    const result =
      messages.length < this.minBatchSize
        ? Promise.resolve(messages.map((m) => decodeDebeziumJson<Row>(m, { decimals: this.decimals })))
        : this.dispatch(messages);
    const ordered = this.tail.then(() => result);
    this.tail = ordered.catch(() => undefined);
    return ordered;
  }

  /** Terminates the workers; batches still in flight reject. */
  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots.splice(0);
    for (const slot of slots)
      this.fail(slot, new DecodePoolError('the decode pool was closed while a batch was being decoded'));
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private dispatch(messages: readonly RawMessage[]): Promise<Decoded<Row>[]> {
    const slot = this.pickSlot();
    const id = this.nextId++;
    const request = pack(id, messages, this.options.decimals);
    return new Promise<Decoded<Row>[]>((resolve, reject) => {
      slot.jobs.set(id, { messages, resolve: resolve as (d: Decoded<unknown>[]) => void, reject });
      if (slot.jobs.size === 1) slot.worker.ref();
      slot.worker.postMessage(request, [request.bytes.buffer, request.lengths.buffer, request.partitions.buffer]);
    });
  }

  /** An idle worker, else a new one while below the limit, else the least busy. */
  private pickSlot(): Slot {
    for (let i = this.slots.length - 1; i >= 0; i--) if ((this.slots[i] as Slot).dead) this.slots.splice(i, 1);
    const idle = this.slots.find((s) => s.jobs.size === 0);
    if (idle !== undefined) return idle;
    if (this.slots.length < this.options.workers) return this.startSlot();
    return this.slots.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
  }

  private startSlot(): Slot {
    const slot: Slot = { worker: startWorker(), jobs: new Map(), dead: false };
    slot.worker.unref();
    slot.worker.on('message', (response: DecodeResponse) => this.onResponse(slot, response));
    slot.worker.on('error', (error) =>
      this.fail(slot, new DecodePoolError(`a decode worker crashed: ${error.message}`, error)),
    );
    slot.worker.on('exit', (code) => this.fail(slot, new DecodePoolError(`a decode worker exited (code ${code})`)));
    this.slots.push(slot);
    return slot;
  }

  private onResponse(slot: Slot, response: DecodeResponse): void {
    const job = slot.jobs.get(response.id);
    if (job === undefined) return;
    slot.jobs.delete(response.id);
    if (slot.jobs.size === 0) slot.worker.unref();
    if ('error' in response) job.reject(new DecodePoolError(`a decode worker failed on a batch: ${response.error}`));
    else job.resolve(unpack(response.json, response.deadLetters, job.messages));
  }

  private fail(slot: Slot, error: DecodePoolError): void {
    slot.dead = true;
    const jobs = [...slot.jobs.values()];
    slot.jobs.clear();
    for (const job of jobs) job.reject(error);
  }
}

function pack(
  id: number,
  messages: readonly RawMessage[],
  decimals: DebeziumDecimalOptions | undefined,
): DecodeRequest {
  let total = 0;
  for (const m of messages) total += (m.key?.length ?? 0) + (m.value?.length ?? 0);
  const bytes = new Uint8Array(total);
  const lengths = new Int32Array(2 * messages.length);
  const partitions = new Int32Array(messages.length);
  const topics: string[] = new Array<string>(messages.length);
  const offsets: string[] = new Array<string>(messages.length);
  let at = 0;
  const put = (part: Buffer | null): number => {
    if (part === null) return -1;
    bytes.set(part, at);
    at += part.length;
    return part.length;
  };
  messages.forEach((m, i) => {
    topics[i] = m.topic;
    offsets[i] = m.offset;
    partitions[i] = m.partition;
    lengths[2 * i] = put(m.key);
    lengths[2 * i + 1] = put(m.value);
  });
  return { id, topics, partitions, offsets, lengths, bytes, ...(decimals === undefined ? {} : { decimals }) };
}

function unpack<Row>(json: string, deadLetters: readonly number[], messages: readonly RawMessage[]): Decoded<Row>[] {
  const decoded = JSON.parse(json) as Decoded<Row>[];
  for (const i of deadLetters) {
    const wire = decoded[i] as unknown as WireDeadLetter;
    decoded[i] = { kind: 'dead-letter', letter: deadLetter(messages[i] as RawMessage, wire.errorKind, wire.reason) };
  }
  return decoded;
}

/**
 * Starts decode-worker with this module's extension. A `.ts` worker needs a TypeScript loader, and
 * tsx's `--import tsx` does not reach worker threads before Node 22.14 (its loader registers in the
 * main thread only), so the worker boots from a tiny script that registers tsx's ESM hooks in the
 * worker itself, then imports the entry. This works the same under tsx and vitest. tsx's own flags
 * are not inherited, so the hooks are never registered twice.
 */
function startWorker(): Worker {
  const ext = extname(fileURLToPath(import.meta.url));
  const entry = new URL(`./decode-worker${ext}`, import.meta.url);
  const tsx = ext === '.ts' ? tsxApi() : undefined;
  if (tsx === undefined) return new Worker(entry);
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { eval: true, execArgv: workerExecArgv(process.execArgv) });
}

/** tsx's ESM API entry, to register its hooks inside a worker thread; undefined without tsx. */
export function tsxApi(): string | undefined {
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch {
    return undefined; // no tsx: the runtime loads .ts itself (e.g. Node's type stripping), or fails loudly in the worker
  }
}

/** `execArgv` without tsx's own loader flags (a worker registers the hooks itself, once). */
export function withoutTsx(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i] as string;
    const next = execArgv[i + 1];
    if ((arg === '--import' || arg === '--require' || arg === '--loader') && next?.includes('/tsx/') === true) i++;
    else if (!/^--(import|require|loader)=.*\/tsx\//.test(arg)) kept.push(arg);
  }
  return kept;
}

/**
 * V8 heap sizing flags: a Worker refuses them in `execArgv` (ERR_WORKER_INVALID_EXEC_ARGV), and
 * does not need them there: V8 flags are process-wide, so the worker's heap is sized by them anyway.
 */
const HEAP_FLAG =
  /^--(max-semi-space-size|min-semi-space-size|max-old-space-size|max-heap-size|semi-space-growth-factor)(=|$)/;

/** The parent's Node flags for a worker thread: without tsx (the bootstrap registers it) and without heap sizing flags. */
export function workerExecArgv(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  const args = withoutTsx(execArgv);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (!HEAP_FLAG.test(arg)) kept.push(arg);
    else if (!arg.includes('=') && /^\d+$/.test(args[i + 1] ?? '')) i++; // `--max-old-space-size 4096`
  }
  return kept;
}
