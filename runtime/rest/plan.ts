import type { JobGraph } from '../graph.ts';
import type { OperatorPlan } from './job-control.ts';

/** The job graph as ops see it: every operator with its uid (what its state is keyed by in checkpoints). */
export function planOf(graph: JobGraph, parallelism: number): OperatorPlan[] {
  const uids = graph.resolveUids();
  return graph.nodes.map((node) => ({
    uid: uids.get(node) ?? '?',
    name: node.name,
    kind: node.source !== undefined ? 'source' : node.isSink ? 'sink' : 'operator',
    // Every operator runs on every subtask (one worker thread per subtask index).
    parallelism,
    inputs: node.inputs.map((edge) => uids.get(edge.from) ?? '?'),
  }));
}
