import { describe, expect, it } from 'vitest';
import type { TaskSnapshot, TaskState } from '../../../../checkpoints/index.ts';
import { assignRestoredState } from '../../../../runtime/execution/restore-assignment.ts';
import { JobGraph, type GraphNode } from '../../../../runtime/graph.ts';
import { debeziumSource, fromCollection } from '../../../../runtime/index.ts';
import { checkParallelGraph } from '../../../../runtime/parallel/graph-check.ts';
import { UnsupportedParallelJobError } from '../../../../runtime/parallel/errors.ts';
import type { SourceDefinition } from '../../../../operators/sources/source.ts';

function graphOf(
  source: SourceDefinition<unknown>,
  keyedStages = 1,
): { graph: JobGraph; uids: Map<GraphNode, string> } {
  const graph = new JobGraph();
  let last = graph.add({
    name: 'source',
    explicitUid: 'src',
    inputs: [],
    source,
    factory: undefined,
    keySelector: undefined,
    isSink: false,
    sourceOptions: undefined,
  });
  for (let i = 0; i < keyedStages; i++) {
    last = graph.add({
      name: `keyed-${i}`,
      explicitUid: `keyed-${i}`,
      inputs: [{ from: last, sideOutput: undefined }],
      source: undefined,
      factory: () => ({ processBatch: () => undefined }),
      keySelector: (v) => v,
      isSink: false,
      sourceOptions: undefined,
    });
  }
  graph.add({
    name: 'sink',
    explicitUid: 'sink',
    inputs: [{ from: last, sideOutput: undefined }],
    source: undefined,
    factory: () => ({ processBatch: () => undefined }),
    keySelector: undefined,
    isSink: true,
    sourceOptions: undefined,
  });
  return { graph, uids: graph.resolveUids() };
}

const kafka = debeziumSource({ topics: ['t'], groupId: 'g' }) as SourceDefinition<unknown>;

function task(
  uid: string,
  subtaskIndex: number,
  parallelism: number,
  operator: TaskState,
  keyed?: unknown,
): TaskSnapshot {
  return { operatorUid: uid, subtaskIndex, parallelism, operator, bytes: 0, ...(keyed === undefined ? {} : { keyed }) };
}

/** A checkpoint of the source → keyed → sink graph written at parallelism 3. */
const atThree: TaskSnapshot[] = [0, 1, 2].flatMap((i) => [
  task('src', i, 3, {
    source: {
      positions: [0, 1, 2, 3, 4, 5]
        .filter((p) => p % 3 === i)
        .map((p) => ({ split: `t:${p}`, position: String(100 + p) })),
    },
    watermark: 1000 + i,
  }),
  task('keyed-0', i, 3, { operator: { watermark: 900 + i }, watermark: 900 + i }, { handle: i }),
  task('sink', i, 3, { operator: { pending: [i] } }),
]);

describe('assignRestoredState', () => {
  it("hands each split's carried upstream watermarks to the subtask that now reads the split", () => {
    const { graph, uids } = graphOf(kafka);
    const carried = (split: string, watermark: number) => ({ split, origin: 'up-0', watermark });
    const written: TaskSnapshot[] = [0, 1].map((i) =>
      task('src', i, 2, {
        source: {
          positions: [{ split: `t:${i}`, position: '1' }],
          carriedWatermarks: [carried(`t:${i}`, 100 + i)],
        },
      }),
    );
    expect(assignRestoredState(written, graph.nodes, uids, 0, 1).get('src')?.source?.carriedWatermarks).toEqual([
      carried('t:0', 100),
      carried('t:1', 101),
    ]);
    expect(assignRestoredState(written, graph.nodes, uids, 1, 2).get('src')?.source?.carriedWatermarks).toEqual([
      carried('t:1', 101),
    ]);
  });

  it('at the same parallelism gives each subtask exactly its own part', () => {
    const { graph, uids } = graphOf(kafka);
    const one = assignRestoredState(atThree, graph.nodes, uids, 1, 3);
    expect(one.get('src')).toEqual({
      source: {
        positions: [
          { split: 't:1', position: '101' },
          { split: 't:4', position: '104' },
        ],
      },
      watermark: 1001,
    });
    expect(one.get('keyed-0')).toEqual({
      operator: { watermark: 901 },
      watermark: 901,
      keyed: [{ handle: 0 }, { handle: 1 }, { handle: 2 }],
    });
    expect(one.get('sink')).toEqual({ operator: { pending: [1] } });
  });

  it('at another parallelism re-splits positions by owner, merges operator state and takes the lowest watermark', () => {
    const { graph, uids } = graphOf(kafka);
    const zero = assignRestoredState(atThree, graph.nodes, uids, 0, 2);
    const one = assignRestoredState(atThree, graph.nodes, uids, 1, 2);
    expect(
      zero
        .get('src')
        ?.source?.positions.map((p) => p.split)
        .sort(),
    ).toEqual(['t:0', 't:2', 't:4']);
    expect(
      one
        .get('src')
        ?.source?.positions.map((p) => p.split)
        .sort(),
    ).toEqual(['t:1', 't:3', 't:5']);
    expect(zero.get('src')?.watermark).toBe(1000);
    // Keyed operators see every old subtask's snapshot (their key groups are spread over all)...
    expect(zero.get('keyed-0')?.rescaled?.map((p) => p.subtaskIndex)).toEqual([0, 1, 2]);
    expect(zero.get('keyed-0')?.keyed).toHaveLength(3);
    // ...the others take over old j with j % N == i.
    expect(zero.get('sink')?.rescaled).toEqual([
      { subtaskIndex: 0, snapshot: { pending: [0] } },
      { subtaskIndex: 2, snapshot: { pending: [2] } },
    ]);
    expect(one.get('sink')?.rescaled).toEqual([{ subtaskIndex: 1, snapshot: { pending: [1] } }]);
  });

  it('scaling up leaves the new subtasks without source positions or operator parts', () => {
    const { graph, uids } = graphOf(kafka);
    const five = assignRestoredState(atThree, graph.nodes, uids, 5, 6);
    expect(five.get('src')?.source?.positions).toEqual([{ split: 't:5', position: '105' }]);
    expect(five.get('sink')?.rescaled).toEqual([]);
  });
});

describe('checkParallelGraph', () => {
  it('accepts one keyed exchange per path and anything at parallelism 1', () => {
    expect(() => checkParallelGraph(graphOf(kafka).graph, 4)).not.toThrow();
    expect(() => checkParallelGraph(graphOf(kafka, 2).graph, 1)).not.toThrow();
    expect(() => checkParallelGraph(graphOf(fromCollection([1]) as SourceDefinition<unknown>).graph, 2)).not.toThrow();
  });

  it('rejects a second keyBy on a path and sources without a split owner, with a typed error', () => {
    expect(() => checkParallelGraph(graphOf(kafka, 2).graph, 2)).toThrow(UnsupportedParallelJobError);
    const ownerless: SourceDefinition<unknown> = {
      name: 'custom',
      createReader: () => ({
        open: () => Promise.resolve(),
        poll: () => Promise.resolve('end'),
        snapshot: () => ({ positions: [] }),
        close: () => Promise.resolve(),
      }),
    };
    expect(() => checkParallelGraph(graphOf(ownerless).graph, 2)).toThrow(/splitOwner/);
  });
});
