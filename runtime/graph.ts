/**
 * The logical dataflow graph a job file builds. Nodes are created in program order; a node's uid
 * (explicit, or derived from its name and upstream uids) identifies its state across restarts,
 * so reordering unrelated code does not orphan state, and `.uid()` pins it for savepoints.
 */
import { createHash } from 'node:crypto';
import type { OperatorFactory } from '../operators/operator.ts';
import type { SourceDefinition } from '../operators/sources/source.ts';
import type { ReplaySafety } from '../operators/sinks/sink.ts';

export interface SinkTraits {
  readonly kind: string;
  readonly replaySafety: ReplaySafety;
  readonly sideEffects: boolean;
}

export interface GraphEdge {
  readonly from: GraphNode;
  /** Side output id, or undefined for the main output. */
  readonly sideOutput: string | undefined;
}

export interface GraphNode {
  readonly id: number;
  name: string;
  explicitUid: string | undefined;
  readonly inputs: readonly GraphEdge[];
  readonly source: SourceDefinition<unknown> | undefined;
  readonly factory: OperatorFactory<unknown, unknown> | undefined;
  /** Set for operators after keyBy: the key of each input record. */
  readonly keySelector: ((value: unknown) => unknown) | undefined;
  readonly isSink: boolean;
  /** Sink-only: what it writes to and what a replay does to it (`cdcflow_sink_info`, replay gates). */
  readonly sinkTraits?: SinkTraits;
  /** Source-only: how event time and watermarks are derived. */
  readonly sourceOptions: unknown;
}

export class JobGraph {
  readonly nodes: GraphNode[] = [];

  add(node: Omit<GraphNode, 'id'>): GraphNode {
    const created: GraphNode = { ...node, id: this.nodes.length };
    this.nodes.push(created);
    return created;
  }

  /** Stable uids for every node; throws when two nodes claim the same one. */
  resolveUids(): Map<GraphNode, string> {
    const uids = new Map<GraphNode, string>();
    const seen = new Map<string, GraphNode>();
    const siblings = new Map<string, number>();
    for (const node of this.nodes) {
      let uid = node.explicitUid;
      if (uid === undefined) {
        const upstream = node.inputs
          .map((e) => `${uids.get(e.from) ?? '?'}${e.sideOutput === undefined ? '' : `[${e.sideOutput}]`}`)
          .join('+');
        const base = `${upstream}>${node.name}`;
        const ordinal = siblings.get(base) ?? 0;
        siblings.set(base, ordinal + 1);
        uid = `${slug(node.name)}-${createHash('sha1').update(`${base}#${ordinal}`).digest('hex').slice(0, 8)}`;
      }
      const clash = seen.get(uid);
      if (clash !== undefined)
        throw new Error(
          `operator uid '${uid}' is used twice (${clash.name} and ${node.name}); give each a distinct .uid()`,
        );
      seen.set(uid, node);
      uids.set(node, uid);
    }
    return uids;
  }

  /** Nodes consuming `node`'s outputs, with the input index they consume on. */
  consumersOf(node: GraphNode): { node: GraphNode; input: number; sideOutput: string | undefined }[] {
    const result: { node: GraphNode; input: number; sideOutput: string | undefined }[] = [];
    for (const candidate of this.nodes) {
      candidate.inputs.forEach((edge, input) => {
        if (edge.from === node) result.push({ node: candidate, input, sideOutput: edge.sideOutput });
      });
    }
    return result;
  }
}

function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'op'
  );
}
