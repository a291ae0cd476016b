/**
 * The messages between the main thread (coordinator) and the subtask workers, and between
 * workers on the keyed exchange. Everything here is structured-cloneable plain data: graph
 * closures never cross threads, every worker builds the same graph by running the job module.
 */
import type { MessagePort } from 'node:worker_threads';
import type { TaskSnapshot } from '../../checkpoints/index.ts';
import type { FreshStart, StreamRecord } from '../../operators/operator.ts';
import type { WireError } from '../../state/index.ts';
import type { RestoredTask } from '../execution/restore-assignment.ts';

/** `workerData` of a subtask worker. */
export interface SubtaskInit {
  readonly kind: 'cdcflow-subtask';
  readonly jobName: string;
  readonly subtaskIndex: number;
  readonly parallelism: number;
  /** The highest parallelism the job ever started at (checkpoints/parallelism-record.ts). */
  readonly highestParallelism: number;
  /** Per operator uid, what this subtask restores (see restore-assignment.ts). */
  readonly restored: readonly (readonly [string, RestoredTask])[];
  /** Set when the job starts from no checkpoint (see OperatorContext.freshStart). */
  readonly freshStart?: FreshStart;
  /** One port per other subtask: `peers[j]` talks to subtask j (undefined at the own index). */
  readonly peers: readonly (MessagePort | undefined)[];
}

export type ToSubtask =
  /** Every subtask opened: start reading (so no subtask runs ahead of one still opening). */
  | { readonly type: 'start' }
  | { readonly type: 'barrier'; readonly checkpointId: number }
  | { readonly type: 'checkpoint-complete'; readonly checkpointId: number }
  | { readonly type: 'checkpoint-aborted'; readonly checkpointId: number }
  /** Every subtask's sources ended and the final savepoint completed: close and exit. */
  | { readonly type: 'finish' }
  /** Graceful stop: stop reading, report 'sources-ended', serve the final checkpoint, then 'finish'. */
  | { readonly type: 'stop-sources' }
  /** `abort`: another subtask failed; give up waits on the exchange, close and report. */
  | { readonly type: 'stop'; readonly abort?: boolean }
  | { readonly type: 'metrics-request'; readonly requestId: number };

export type FromSubtask =
  | { readonly type: 'opened' }
  | { readonly type: 'ack'; readonly checkpointId: number; readonly snapshot: TaskSnapshot }
  /** The subtask's snapshot of `uid` failed (its asynchronous write): the checkpoint is aborted. */
  | { readonly type: 'decline'; readonly uid: string; readonly checkpointId: number; readonly reason: string }
  | { readonly type: 'sources-ended' }
  | { readonly type: 'metrics'; readonly requestId: number; readonly metrics: unknown }
  /** The subtask's failure with its class, domain, retriable, location, fields and cause (state/error-wire.ts). */
  | { readonly type: 'failed'; readonly error: WireError }
  /** The subtask closed; `metrics` is its final prom-client registry as JSON. */
  | { readonly type: 'done'; readonly metrics: unknown };

/** On an exchange port: data and in-band signals for one (keyed operator, input) pair, or credit back. */
export type ExchangeMessage =
  | {
      readonly t: 'batch';
      readonly node: number;
      readonly input: number;
      readonly records: readonly StreamRecord<unknown>[];
      readonly sourceTs?: number;
    }
  | { readonly t: 'watermark'; readonly node: number; readonly input: number; readonly timestamp: number }
  | { readonly t: 'idle'; readonly node: number; readonly input: number }
  | { readonly t: 'active'; readonly node: number; readonly input: number }
  | { readonly t: 'barrier'; readonly node: number; readonly input: number; readonly checkpointId: number }
  | { readonly t: 'end'; readonly node: number; readonly input: number }
  | { readonly t: 'credit'; readonly n: number };

export function isSubtaskInit(data: unknown): data is SubtaskInit {
  return typeof data === 'object' && data !== null && (data as { kind?: unknown }).kind === 'cdcflow-subtask';
}
