/**
 * What the public API infers at the user's call site (type-checked by `npm run typecheck`; the
 * runtime assertions are trivial). Each case is one a user hit (issue: package, types that help).
 */
import { describe, expectTypeOf, it } from 'vitest';
import {
  OutputTag,
  StreamEnvironment,
  fromCollection,
  postgresSink,
  valueState,
  type ChangeEvent,
  type DataStream,
  type Output,
  type TableChange,
} from '../../../runtime/index.ts';
import { JobHarness } from '../../../runtime/testing.ts';

interface Order {
  id: number;
  status: string;
  amount: string;
}
interface Alert {
  id: number;
  count: number;
}

const env = StreamEnvironment.create({ jobName: 'types', state: { backend: 'memory' } });
const orders = env.fromSource(fromCollection<Order>([]));

describe('public API types', () => {
  it('process: annotating `out` infers the output type and keeps the state handles typed', () => {
    const alerts = orders
      .keyBy((o) => o.id)
      .process({
        state: { seen: valueState<number>() },
        processElement(order, ctx, out: Output<Alert>) {
          const n = (ctx.state.seen.value() ?? 0) + 1;
          ctx.state.seen.update(n);
          out.emit({ id: order.id, count: n });
        },
      });
    expectTypeOf(alerts).toEqualTypeOf<DataStream<Alert>>();
  });

  it('map infers its output from the function', () => {
    expectTypeOf(orders.map((o) => o.amount)).toEqualTypeOf<DataStream<string>>();
  });

  it('postgresSink accepts a row declared as an interface', () => {
    const changes = env
      .fromSource(fromCollection<ChangeEvent<Order>>([]))
      .keyBy((e) => Number(e.key?.['id']))
      .upsert();
    expectTypeOf(changes).toEqualTypeOf<DataStream<TableChange<number, Order>>>();
    changes.sinkTo(
      postgresSink<number, Order>({ table: 'orders', primaryKey: ['id'], connectionString: 'postgres://unused' }),
    );
    changes.sinkTo(postgresSink({ table: 'orders', primaryKey: ['id'], connectionString: 'postgres://unused' }));
  });

  it('postgresSink takes interface rows through toChange too, and names toChange when it is missing', () => {
    const alerts = orders.map((o): Alert => ({ id: o.id, count: 1 }));
    alerts.sinkTo(
      postgresSink({
        table: 'alerts',
        primaryKey: ['id'],
        connectionString: 'postgres://unused',
        toChange: (a) => ({ kind: 'upsert', row: a }),
      }),
    );
    // @ts-expect-error plain records need toChange (the sink takes TableChange otherwise)
    alerts.sinkTo(postgresSink({ table: 'alerts', primaryKey: ['id'], connectionString: 'postgres://unused' }));
  });

  it('JobHarness types each named output, side outputs included', () => {
    const late = new OutputTag<Order>('late');
    const run = new JobHarness<ChangeEvent<Order>>().run((input) => ({
      table: input.keyBy((e) => Number(e.key?.['id'])).upsert(),
      late: input.map((e) => e.after as Order).getSideOutput(late),
    }));
    expectTypeOf(run).resolves.toEqualTypeOf<{ table: TableChange<number, Order>[]; late: Order[] }>();
  });
});
