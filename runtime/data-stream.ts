import type { Operator, OperatorFactory, OutputTag } from '../operators/operator.ts';
import type { SinkDefinition } from '../operators/sinks/sink.ts';
import { filterOperator } from '../operators/transform/filter.ts';
import { flatMapOperator } from '../operators/transform/flat-map.ts';
import { mapOperator } from '../operators/transform/map.ts';
import {
  keyedProcessOperator,
  type KeyedProcessFunction,
  type StateSpec,
  type StateSpecs,
} from '../operators/transform/process.ts';
import { upsertOperator, type UpsertOptions } from '../operators/transform/upsert.ts';
import type { ChangeEvent } from '../operators/change-event.ts';
import type { TableChange } from '../operators/table-change.ts';
import type { WindowAssigner } from '../operators/window/assigners.ts';
import type { GraphEdge, GraphNode, JobGraph, SinkTraits } from './graph.ts';
import { WindowedStream } from './windowed-stream.ts';

interface NodeSpec {
  readonly name: string;
  readonly inputs: readonly GraphEdge[];
  readonly factory: OperatorFactory<unknown, unknown>;
  readonly keySelector?: (value: unknown) => unknown;
  readonly isSink?: boolean;
  readonly sinkTraits?: SinkTraits;
}

function addOperator(graph: JobGraph, spec: NodeSpec): GraphNode {
  return graph.add({
    name: spec.name,
    explicitUid: undefined,
    inputs: spec.inputs,
    source: undefined,
    factory: spec.factory,
    keySelector: spec.keySelector,
    isSink: spec.isSink ?? false,
    ...(spec.sinkTraits === undefined ? {} : { sinkTraits: spec.sinkTraits }),
    sourceOptions: undefined,
  });
}

const erase = <In, Out>(factory: OperatorFactory<In, Out>) => factory as unknown as OperatorFactory<unknown, unknown>;

/** A stream of `T` in a job being built. Every method adds a node and returns the new stream. */
export class DataStream<T> {
  constructor(
    protected readonly graph: JobGraph,
    protected readonly node: GraphNode,
    protected readonly sideOutput: string | undefined = undefined,
  ) {}

  protected edge(): GraphEdge {
    return { from: this.node, sideOutput: this.sideOutput };
  }

  /** Pins the uid of the operator that produces this stream; keep it stable to restore savepoints. */
  uid(uid: string): this {
    this.node.explicitUid = uid;
    return this;
  }

  /** Names the operator that produces this stream (metrics, logs, UI). */
  name(name: string): this {
    this.node.name = name;
    return this;
  }

  map<R>(fn: (value: T) => R): DataStream<R> {
    return this.then('map', () => mapOperator(fn));
  }

  filter(predicate: (value: T) => boolean): DataStream<T> {
    return this.then('filter', () => filterOperator(predicate));
  }

  flatMap<R>(fn: (value: T) => Iterable<R>): DataStream<R> {
    return this.then('flatMap', () => flatMapOperator(fn));
  }

  /** Adds a custom operator. */
  transform<R>(name: string, factory: OperatorFactory<T, R>): DataStream<R> {
    return this.then(name, factory);
  }

  /** Merges streams of the same type; checkpoints align barriers across all of them. */
  union(...others: DataStream<T>[]): DataStream<T> {
    const node = addOperator(this.graph, {
      name: 'union',
      inputs: [this.edge(), ...others.map((o) => o.edge())],
      factory: erase(() => mapOperator((value: T) => value)),
    });
    return new DataStream<T>(this.graph, node);
  }

  /** Partitions by key: the next operator sees one key at a time, with state per key. */
  keyBy<K>(selector: (value: T) => K): KeyedStream<K, T> {
    return new KeyedStream<K, T>(this.graph, this.node, this.sideOutput, selector);
  }

  /** The records an upstream operator sent to `tag` (late events, dead letters, ...). */
  getSideOutput<S>(tag: OutputTag<S>): DataStream<S> {
    return new DataStream<S>(this.graph, this.node, tag.id);
  }

  sinkTo(sink: SinkDefinition<T>): DataStream<never> {
    const node = addOperator(this.graph, {
      name: `sink:${sink.name}`,
      inputs: [this.edge()],
      factory: erase(() => sink.createOperator()),
      isSink: true,
      sinkTraits: {
        kind: sink.kind ?? 'custom',
        replaySafety: sink.replaySafety ?? 'at-least-once',
        sideEffects: sink.sideEffects ?? false,
      },
    });
    return new DataStream<never>(this.graph, node);
  }

  protected then<R>(name: string, factory: OperatorFactory<T, R>, keySelector?: (value: T) => unknown): DataStream<R> {
    const node = addOperator(this.graph, {
      name,
      inputs: [this.edge()],
      factory: erase(factory),
      ...(keySelector === undefined ? {} : { keySelector: keySelector as (value: unknown) => unknown }),
    });
    return new DataStream<R>(this.graph, node);
  }
}

/** A stream partitioned by key; its operators get keyed state. */
export class KeyedStream<K, T> extends DataStream<T> {
  constructor(
    graph: JobGraph,
    node: GraphNode,
    sideOutput: string | undefined,
    readonly keySelector: (value: T) => K,
  ) {
    super(graph, node, sideOutput);
  }

  /** Per-record logic with value/map/list state scoped to the record's key. */
  process<R, S extends StateSpecs = Record<never, StateSpec>>(fn: KeyedProcessFunction<K, T, R, S>): DataStream<R> {
    return this.then('process', () => keyedProcessOperator(fn), this.keySelector);
  }

  /**
   * Changelog → table: the latest row per key in commit order (`source.position`), guarded against replays, with unchanged TOASTed columns kept from state, as table changes (docs/commit-order.md).
   * Key the stream by primary key first (`keyBy((e) => e.key)` for Debezium sources).
   */
  upsert<Row>(this: KeyedStream<K, ChangeEvent<Row>>, options: UpsertOptions = {}): DataStream<TableChange<K, Row>> {
    return this.then('upsert', () => upsertOperator<K, Row>(options), this.keySelector);
  }

  /**
   * Event-time windows per key (tumbling, sliding, session); needs a source with a
   * WatermarkStrategy. Finish with `.aggregate`, `.reduce` or `.process`.
   */
  window(assigner: WindowAssigner): WindowedStream<K, T> {
    return new WindowedStream<K, T>((name, factory) => this.transformKeyed(name, factory), assigner);
  }

  /** A custom keyed operator (it receives records with `key` set and keyed state in its context). */
  transformKeyed<R>(name: string, factory: () => Operator<T, R>): DataStream<R> {
    return this.then(name, factory, this.keySelector);
  }
}
