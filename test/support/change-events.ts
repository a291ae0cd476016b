/**
 * A Debezium change event of `<db>.public.orders` at `lsn`, as the runtime and sink tests build them
 * (unlike runtime/testing.ts's `changeEvent`: `before` stays null, the position is partition 0's
 * stream position, and the source fields are fixed so results compare exactly).
 */
import type { ChangeEvent } from '../../runtime/index.ts';
import { streamPosition } from '../../state/change-position.ts';

export interface TestEventOptions {
  /** @default 'ecommerce' */
  readonly db?: string;
  /** Source commit time. @default 1_700_000_000_000 + lsn */
  readonly sourceTsMs?: number;
  /** @default partition 0 of topic 't', offset `lsn` */
  readonly origin?: ChangeEvent<unknown>['origin'];
}

export function testChangeEvent<R>(
  op: ChangeEvent<R>['op'],
  lsn: number,
  after: R | null,
  key: Readonly<Record<string, unknown>> | null,
  options: TestEventOptions = {},
): ChangeEvent<R> {
  return {
    op,
    before: null,
    after,
    source: {
      db: options.db ?? 'ecommerce',
      schema: 'public',
      table: 'orders',
      lsn,
      position: streamPosition(0, lsn),
      txId: lsn,
      tsMs: options.sourceTsMs ?? 1_700_000_000_000 + lsn,
      snapshot: null,
    },
    tsMs: 0,
    key,
    origin: options.origin ?? { topic: 't', partition: 0, offset: String(lsn) },
  };
}
