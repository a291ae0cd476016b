/** The job graph (from the plan), laid out with dagre, each operator with its live figures. */
import { Graph, layout } from '@dagrejs/dagre';
import { useMemo } from 'preact/hooks';
import type { OverviewOperator } from '../../overview-types.ts';
import { formatPercent, formatRate, formatSeconds } from './derive.ts';

export interface OperatorFigures {
  readonly inRate: number | undefined;
  readonly outRate: number | undefined;
  readonly busy: number | undefined;
  readonly backpressure: number | undefined;
  /** Seconds behind the wall clock (the slowest subtask's watermark). */
  readonly watermarkLag: number | undefined;
}

const NODE_W = 250;
const NODE_H = 104;

export function JobGraph({
  plan,
  figures,
}: {
  readonly plan: readonly OverviewOperator[];
  readonly figures: ReadonlyMap<string, OperatorFigures>;
}) {
  const laid = useMemo(() => {
    const g = new Graph();
    g.setGraph({ rankdir: 'LR', nodesep: 24, ranksep: 56, marginx: 8, marginy: 8 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const op of plan) g.setNode(op.uid, { width: NODE_W, height: NODE_H });
    for (const op of plan) for (const from of op.inputs) if (g.hasNode(from)) g.setEdge(from, op.uid);
    layout(g);
    const nodes = plan.map((op) => {
      const n = g.node(op.uid) as { x: number; y: number };
      return { op, x: n.x - NODE_W / 2, y: n.y - NODE_H / 2 };
    });
    const edges = g.edges().map((e) => (g.edge(e) as { points: { x: number; y: number }[] }).points);
    const size = g.graph() as { width?: number; height?: number };
    return { nodes, edges, width: size.width ?? 400, height: size.height ?? 120 };
  }, [JSON.stringify(plan)]);

  return (
    <svg
      class="graph"
      data-testid="job-graph"
      viewBox={`0 0 ${laid.width} ${laid.height}`}
      width={laid.width}
      height={laid.height}
      role="img"
      aria-label="job graph"
    >
      <defs>
        <marker
          id="arrow"
          viewBox="0 0 10 10"
          refX="9"
          refY="5"
          markerWidth="7"
          markerHeight="7"
          orient="auto-start-reverse"
        >
          <path d="M 0 0 L 10 5 L 0 10 z" fill="#64748b" />
        </marker>
      </defs>
      {laid.edges.map((points, i) => (
        <path
          key={i}
          d={points.map((p, j) => `${j === 0 ? 'M' : 'L'} ${p.x} ${p.y}`).join(' ')}
          class="edge"
          marker-end="url(#arrow)"
        />
      ))}
      {laid.nodes.map(({ op, x, y }) => {
        const f = figures.get(op.uid);
        const bp = f?.backpressure ?? 0;
        const level = bp >= 0.5 ? 'bad' : bp >= 0.1 ? 'warn' : 'ok';
        return (
          <g
            key={op.uid}
            transform={`translate(${x},${y})`}
            class={`node node-${op.kind} node-${level}`}
            data-testid="graph-node"
            data-uid={op.uid}
          >
            <rect width={NODE_W} height={NODE_H} rx="6" class="node-box" />
            <rect width={NODE_W} height="24" rx="6" class="node-head" />
            <text x="10" y="17" class="node-title">
              {truncate(op.name, 24)}
            </text>
            <text x={NODE_W - 10} y="17" class="node-kind" text-anchor="end">{`×${op.parallelism}`}</text>
            <text x="10" y="43" class="node-line">
              <tspan class="k">in </tspan>
              <tspan data-testid="node-in">{op.kind === 'source' ? '—' : formatRate(f?.inRate)}</tspan>
              <tspan class="k" dx="12">
                out{' '}
              </tspan>
              <tspan data-testid="node-out">{op.kind === 'sink' ? '—' : formatRate(f?.outRate)}</tspan>
            </text>
            <text x="10" y="63" class="node-line">
              <tspan class="k">busy </tspan>
              {op.kind === 'source' ? '—' : formatPercent(f?.busy)}
              <tspan class="k" dx="12">
                backpressure{' '}
              </tspan>
              <tspan class={`bp-${level}`}>{op.kind === 'source' ? '—' : formatPercent(f?.backpressure)}</tspan>
            </text>
            <text x="10" y="83" class="node-line">
              <tspan class="k">watermark lag </tspan>
              {f?.watermarkLag === undefined ? 'no watermark' : formatSeconds(f.watermarkLag)}
            </text>
            <text x="10" y="98" class="node-uid">{`${op.kind} · uid ${truncate(op.uid, 32)}`}</text>
          </g>
        );
      })}
    </svg>
  );
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
