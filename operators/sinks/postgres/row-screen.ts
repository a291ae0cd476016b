/**
 * Screens a batch of changes before the sink writes it: rows with a value the table would refuse
 * are taken out (and returned as refused) so the bare write of the rest does not abort the open
 * transaction. Client-side checks first (value-checks.ts, no round trip on a clean batch), then
 * one probe round trip for the values they are unsure of (refusal-probe.ts).
 */
import { PostgresSinkError, type PgSession } from './pg-session.ts';
import type { RefusalProbe } from './refusal-probe.ts';
import type { KeyedChange, RefusedChange } from './table-writer.ts';
import { valueCheck, type CertainRefusal, type ColumnInfo, type ValueCheck } from './value-checks.ts';

export interface ScreenedBatch {
  readonly accepted: KeyedChange[];
  readonly refused: RefusedChange[];
}

export class RowScreen {
  private readonly checks = new Map<string, { check: ValueCheck; type: string }>();

  constructor(
    columns: ReadonlyMap<string, ColumnInfo>,
    managed: readonly string[],
    private readonly probe: RefusalProbe,
  ) {
    for (const [name, info] of columns)
      if (!managed.includes(name)) this.checks.set(name, { check: valueCheck(name, info), type: info.type });
  }

  async screen(session: () => Promise<PgSession>, changes: readonly KeyedChange[]): Promise<ScreenedBatch> {
    const refusals = new Map<number, { column: string; type: string; refusal: CertainRefusal }>();
    const asks: { at: number; column: string; type: string; text: string }[] = [];
    changes.forEach((change, at) => {
      // Deletes write key values only (or tombstones of them); the write's refusal path covers them.
      if (change.kind !== 'upsert') return;
      for (const column in change.row) {
        const entry = this.checks.get(column);
        if (entry === undefined) continue;
        const value = change.row[column];
        const verdict = entry.check(value);
        if (verdict === 'write') continue;
        if (verdict === 'ask') asks.push({ at, column, type: entry.type, text: String(value) });
        else if (!refusals.has(at)) refusals.set(at, { column, type: entry.type, refusal: verdict });
      }
    });
    const pending = asks.filter((a) => !refusals.has(a.at));
    if (pending.length > 0) {
      const answers = await this.probe.refusals(await session(), pending);
      pending.forEach((ask, i) => {
        const refusal = answers[i];
        if (refusal !== undefined && !refusals.has(ask.at))
          refusals.set(ask.at, { column: ask.column, type: ask.type, refusal });
      });
    }
    if (refusals.size === 0) return { accepted: [...changes], refused: [] };
    const accepted: KeyedChange[] = [];
    const refused: RefusedChange[] = [];
    changes.forEach((change, at) => {
      const found = refusals.get(at);
      if (found === undefined) {
        accepted.push(change);
        return;
      }
      const { column, type, refusal } = found;
      const error = new PostgresSinkError(`column ${column} (${type}): ${refusal.message}`, refusal.sqlState, {
        domain: 'user',
        retriable: false,
      });
      refused.push({ change, error, sqlState: refusal.sqlState });
    });
    return { accepted, refused };
  }
}
