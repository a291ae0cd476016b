/**
 * Test helpers that work across worker threads (a parallel job's sinks run in its workers, so
 * an in-memory collectSink cannot hand results back): a sink appending what each completed
 * checkpoint committed to `<dir>/<name>-<subtask>.jsonl`, and a source wrapper that slows polls.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SinkDefinition, SourceDefinition } from '../../runtime/index.ts';

/** Committed records, appended at checkpoint completion (so a kill loses at most what the last checkpoint committed). */
export function jsonLinesSink<T>(dir: string, name: string, print?: (line: string) => void, failOnceMarker?: string): SinkDefinition<T> {
  return {
    name: `json-lines:${name}`,
    createOperator: () => {
      let file = '';
      let subtask = 0;
      let committed = 0;
      let open: T[] = [];
      let total = 0;
      const prepared = new Map<number, T[]>();
      const write = (values: readonly T[]) => {
        if (values.length > 0) appendFileSync(file, values.map((v) => `${JSON.stringify(v)}\n`).join(''));
        total += values.length;
      };
      return {
        open: (context) => {
          mkdirSync(dir, { recursive: true });
          subtask = context.subtaskIndex;
          file = join(dir, `${name}-${subtask}.jsonl`);
        },
        processBatch: (batch) => {
          if (failOnceMarker !== undefined && subtask === 1 && committed > 0 && !existsSync(failOnceMarker)) {
            writeFileSync(failOnceMarker, 'failed once\n');
            throw new Error('injected sink failure (test)');
          }
          open.push(...batch.map((r) => r.value));
        },
        snapshotState: (checkpointId) => {
          prepared.set(checkpointId, open);
          open = [];
          return undefined;
        },
        notifyCheckpointComplete: (checkpointId) => {
          for (const [id, values] of [...prepared]) {
            if (id > checkpointId) continue;
            write(values);
            prepared.delete(id);
          }
          committed += 1;
          print?.(`checkpoint ${checkpointId} complete: ${total} ${name}`);
        },
      };
    },
  };
}

/** Every record the sinks named `name` committed, over all subtasks. */
export function readJsonLines<T>(dir: string, name: string): T[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.startsWith(`${name}-`) && f.endsWith('.jsonl'))
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as T));
}

/** `source`, with every data poll delayed by `ms` (0: unchanged). */
export function throttled<T>(source: SourceDefinition<T>, ms: number): SourceDefinition<T> {
  if (ms <= 0) return source;
  return {
    name: source.name,
    ...(source.splitOwner === undefined ? {} : { splitOwner: (split: string, parallelism: number) => (source.splitOwner as NonNullable<typeof source.splitOwner>)(split, parallelism) }),
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
        ...(reader.notifyCheckpointComplete === undefined ? {} : { notifyCheckpointComplete: (id: number) => (reader.notifyCheckpointComplete as (id: number) => Promise<void>)(id) }),
        close: () => reader.close(),
      };
    },
  };
}
