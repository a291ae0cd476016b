/**
 * Which part of a checkpoint each subtask restores, whatever parallelism wrote it:
 *  - keyed state: every handle of the operator (the backend keeps only its own key groups);
 *  - source positions: every recorded split position whose split this subtask now owns
 *    (`SourceDefinition.splitOwner`), and the upstream watermarks those splits carried;
 *  - operator state: at the same parallelism subtask i's own snapshot; otherwise the snapshots of
 *    the old subtasks it takes over (all of them for keyed operators, old j with j % N == i for
 *    others), merged by the operator (`Operator.mergeRescaled`);
 *  - watermarks: the own one at the same parallelism, else the minimum over all old subtasks.
 */
import type { TaskSnapshot, TaskState } from '../../checkpoints/index.ts';
import type { Operator, OperatorInfo, OperatorSnapshot, RescaledSnapshot } from '../../operators/operator.ts';
import type { SourceSnapshot, SplitPosition } from '../../operators/sources/source.ts';
import type { GraphNode } from '../graph.ts';
import { UnsupportedParallelJobError } from '../parallel/errors.ts';

/** What one subtask of one operator starts from. */
export interface RestoredTask {
  /** Set when the checkpoint was written at the same parallelism. */
  readonly operator?: OperatorSnapshot;
  /** Set instead of `operator` when the parallelism changed: the old subtasks' snapshots to merge. */
  readonly rescaled?: readonly RescaledSnapshot[];
  readonly keyed?: readonly unknown[];
  readonly watermark?: number;
  readonly source?: SourceSnapshot;
}

export function assignRestoredState(
  tasks: readonly TaskSnapshot[],
  nodes: readonly GraphNode[],
  uids: ReadonlyMap<GraphNode, string>,
  subtaskIndex: number,
  parallelism: number,
): Map<string, RestoredTask> {
  const result = new Map<string, RestoredTask>();
  for (const node of nodes) {
    const uid = uids.get(node) as string;
    const parts = tasks.filter((t) => t.operatorUid === uid).sort((a, b) => a.subtaskIndex - b.subtaskIndex);
    if (parts.length === 0) continue;
    const sameParallelism = parts.every((p) => p.parallelism === parallelism) && parts.length === parallelism;
    const own = sameParallelism ? parts.find((p) => p.subtaskIndex === subtaskIndex) : undefined;
    const stored = (p: TaskSnapshot): TaskState => p.operator ?? {};
    const keyed = parts.flatMap((p) => (p.keyed === undefined ? [] : [p.keyed]));
    const watermark =
      own === undefined ? minimumWatermark(parts.map((p) => stored(p).watermark)) : stored(own).watermark;
    const common = { ...(keyed.length === 0 ? {} : { keyed }), ...(watermark === undefined ? {} : { watermark }) };
    if (node.source !== undefined) {
      const owner = splitOwnerOf(node, parallelism);
      const positions: SplitPosition[] = parts
        .flatMap((p) => stored(p).source?.positions ?? [])
        .filter((p) => owner(p.split) === subtaskIndex);
      const carriedWatermarks = parts
        .flatMap((p) => stored(p).source?.carriedWatermarks ?? [])
        .filter((c) => owner(c.split) === subtaskIndex);
      result.set(uid, {
        ...common,
        source: { positions, ...(carriedWatermarks.length === 0 ? {} : { carriedWatermarks }) },
      });
    } else if (own !== undefined) {
      const operator = stored(own).operator;
      result.set(uid, { ...common, ...(operator === undefined ? {} : { operator }) });
    } else {
      const taken =
        node.keySelector === undefined ? parts.filter((p) => p.subtaskIndex % parallelism === subtaskIndex) : parts;
      result.set(uid, {
        ...common,
        rescaled: taken.map((p) => ({ subtaskIndex: p.subtaskIndex, snapshot: stored(p).operator })),
      });
    }
  }
  return result;
}

/** The subtask that reads each split of a source node at `parallelism`. */
export function splitOwnerOf(node: GraphNode, parallelism: number): (split: string) => number {
  const definition = node.source;
  if (parallelism === 1) return () => 0;
  const owner = definition?.splitOwner;
  if (owner === undefined)
    throw new UnsupportedParallelJobError(
      `source '${node.name}' does not say which subtask reads which split (SourceDefinition.splitOwner)`,
    );
  return (split) => owner.call(definition, split, parallelism);
}

/** The lowest of the old subtasks' watermarks; none when one of them had none (it held event time back). */
function minimumWatermark(values: readonly (number | undefined)[]): number | undefined {
  if (values.length === 0 || values.some((v) => v === undefined)) return undefined;
  return Math.min(...(values as number[]));
}

/** The snapshot an operator opens with: its own, or the old subtasks' merged by the operator. */
export function restoredSnapshotOf(
  restored: RestoredTask | undefined,
  operator: Operator<unknown, unknown>,
  info: OperatorInfo,
  name: string,
): OperatorSnapshot {
  if (restored?.rescaled === undefined) return restored?.operator;
  if (operator.mergeRescaled !== undefined) return operator.mergeRescaled(restored.rescaled, info);
  if (restored.rescaled.every((p) => p.snapshot === undefined)) return undefined;
  throw new UnsupportedParallelJobError(
    `operator '${name}' (${info.uid}) has operator state but no mergeRescaled(), so it cannot restore at parallelism ${info.parallelism} from a checkpoint taken at another parallelism`,
  );
}
