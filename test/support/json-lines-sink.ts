/**
 * Test helpers that work across worker threads (a parallel job's sinks run in its workers, so
 * an in-memory collectSink cannot hand results back): a two-phase sink of JSON-lines files, and
 * a source wrapper that slows polls.
 *
 * The sink is built on twoPhaseCommitSink, so a failover between a checkpoint's completion and
 * its notification loses nothing (the restore commits what the checkpoint recorded): at the
 * barrier the open batch is written to `<dir>/<name>-<subtask>/staged-<n>.jsonl`, and the commit
 * renames it to `<n>.jsonl` (atomic and idempotent); a restore renames what its checkpoint
 * recorded and deletes every other staged file of the subtask.
 */
import { CdcflowError } from '../../state/errors.ts';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  twoPhaseCommitSink,
  type SinkIdentity,
  type TwoPhaseCommitter,
} from '../../operators/sinks/two-phase-commit.ts';
import type { StreamRecord } from '../../operators/operator.ts';
import type { SinkDefinition, SourceDefinition } from '../../runtime/index.ts';

interface StagedFile {
  readonly checkpointId: number;
  readonly records: number;
}

/** Committed records as `<dir>/<name>-<subtask>/<checkpointId>.jsonl`; `failOnceMarker`: subtask 1 throws once after its first commit. */
export function jsonLinesSink<T>(
  dir: string,
  name: string,
  print?: (line: string) => void,
  failOnceMarker?: string,
  failRetriable = true,
): SinkDefinition<T> {
  return twoPhaseCommitSink<T, StagedFile>(
    `json-lines:${name}`,
    (identity) =>
      new JsonLinesCommitter<T>(
        join(dir, `${name}-${identity.subtaskIndex}`),
        name,
        identity,
        print,
        failOnceMarker,
        failRetriable,
      ),
    {
      commitAttempts: 1,
    },
  );
}

class JsonLinesCommitter<T> implements TwoPhaseCommitter<T, StagedFile> {
  private open: T[] = [];
  private committed = 0;
  private total = 0;

  constructor(
    private readonly folder: string,
    private readonly name: string,
    private readonly identity: SinkIdentity,
    private readonly print: ((line: string) => void) | undefined,
    private readonly failOnceMarker: string | undefined,
    private readonly failRetriable = true,
  ) {
    mkdirSync(folder, { recursive: true });
  }

  beginTransaction(): Promise<void> {
    this.open = [];
    return Promise.resolve();
  }

  write(records: readonly StreamRecord<T>[]): Promise<void> {
    if (
      this.failOnceMarker !== undefined &&
      this.identity.subtaskIndex === 1 &&
      this.committed > 0 &&
      !existsSync(this.failOnceMarker)
    ) {
      writeFileSync(this.failOnceMarker, 'failed once\n');
      if (!this.failRetriable)
        throw new CdcflowError('injected non-retriable sink failure (test)', { domain: 'user', retriable: false });
      throw new Error('injected sink failure (test)');
    }
    for (const r of records) this.open.push(r.value);
    return Promise.resolve();
  }

  preCommit(checkpointId: number): Promise<StagedFile> {
    writeFileSync(
      join(this.folder, `staged-${checkpointId}.jsonl`),
      this.open.map((v) => `${JSON.stringify(v)}\n`).join(''),
    );
    return Promise.resolve({ checkpointId, records: this.open.length });
  }

  commit(txn: StagedFile): Promise<void> {
    const staged = join(this.folder, `staged-${txn.checkpointId}.jsonl`);
    if (existsSync(staged)) renameSync(staged, join(this.folder, `${txn.checkpointId}.jsonl`));
    this.committed += 1;
    this.total += txn.records;
    this.print?.(`checkpoint ${txn.checkpointId} complete: ${this.total} ${this.name}`);
    return Promise.resolve();
  }

  async recover(committed: readonly StagedFile[]): Promise<void> {
    for (const txn of committed) await this.commit(txn);
    for (const file of readdirSync(this.folder)) if (file.startsWith('staged-')) rmSync(join(this.folder, file));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Every record the sinks named `name` committed, over all subtasks. */
export function readJsonLines<T>(dir: string, name: string): T[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.startsWith(`${name}-`))
    .flatMap((sub) =>
      readdirSync(join(dir, sub))
        .filter((f) => /^\d+\.jsonl$/.test(f))
        .flatMap((f) =>
          readFileSync(join(dir, sub, f), 'utf8')
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => JSON.parse(l) as T),
        ),
    );
}

/** `source`, with every data poll delayed by `ms` (0: unchanged). */
export function throttled<T>(source: SourceDefinition<T>, ms: number): SourceDefinition<T> {
  if (ms <= 0) return source;
  return {
    name: source.name,
    ...(source.splitOwner === undefined
      ? {}
      : {
          splitOwner: (split: string, parallelism: number) =>
            (source.splitOwner as NonNullable<typeof source.splitOwner>)(split, parallelism),
        }),
    createReader: (context) => {
      const reader = source.createReader(context);
      return {
        open: (restored) => reader.open(restored),
        poll: async (maxWaitMs) => {
          const result = await reader.poll(maxWaitMs);
          if (typeof result === 'object') await new Promise((r) => setTimeout(r, ms));
          return result;
        },
        snapshot: (id) => reader.snapshot(id),
        ...(reader.notifyCheckpointComplete === undefined
          ? {}
          : {
              notifyCheckpointComplete: (id: number) =>
                (reader.notifyCheckpointComplete as (id: number) => Promise<void>)(id),
            }),
        close: () => reader.close(),
      };
    },
  };
}
