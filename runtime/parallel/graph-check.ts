/**
 * What parallel execution supports, checked before any worker starts, so an unsupported graph
 * fails with a clear error instead of giving wrong results:
 *  - every source says which subtask reads which split (`SourceDefinition.splitOwner`);
 *  - at most one keyed exchange on any path from a source to a sink. A keyed operator behind
 *    another keyed operator would need a second exchange that is drained while the first waits
 *    for credit, re-entering operators mid-batch; the task loop does not allow that yet.
 */
import type { GraphNode, JobGraph } from '../graph.ts';
import { UnsupportedParallelJobError } from './errors.ts';

export function checkParallelGraph(graph: JobGraph, parallelism: number): void {
  if (parallelism === 1) return;
  const behindExchange = new Set<GraphNode>();
  for (const node of graph.nodes) {
    if (node.source !== undefined && node.source.splitOwner === undefined) {
      throw new UnsupportedParallelJobError(
        `source '${node.name}' cannot run at parallelism ${parallelism}: it does not say which subtask reads which split (SourceDefinition.splitOwner)`,
      );
    }
    const upstreamBehind = node.inputs.some((e) => behindExchange.has(e.from));
    if (node.keySelector !== undefined && upstreamBehind) {
      throw new UnsupportedParallelJobError(
        `keyed operator '${node.name}' is behind another keyed operator: only one keyBy per path is supported at parallelism ${parallelism}`,
      );
    }
    if (node.keySelector !== undefined || upstreamBehind) behindExchange.add(node);
  }
}
