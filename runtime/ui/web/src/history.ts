/**
 * The time series the charts draw, accumulated in the page from successive snapshots (the job
 * keeps no history of its own beyond checkpoints): the last ten minutes at one point a second.
 */
import type { JobOverview } from '../../overview-types.ts';

const MAX_POINTS = 600;

export class SeriesHistory {
  readonly times: number[] = [];
  private readonly series = new Map<string, (number | null)[]>();

  push(at: JobOverview, values: ReadonlyMap<string, number | undefined>): void {
    this.times.push(at.nowMs / 1000);
    const length = this.times.length;
    for (const [key, value] of values) {
      let s = this.series.get(key);
      if (s === undefined) {
        s = new Array<number | null>(length - 1).fill(null);
        this.series.set(key, s);
      }
      s.push(value ?? null);
    }
    for (const s of this.series.values()) if (s.length < length) s.push(null);
    if (length > MAX_POINTS) {
      this.times.shift();
      for (const s of this.series.values()) s.shift();
    }
  }

  /** uPlot's aligned data for the series whose key starts with `prefix`, with their names after it. */
  aligned(prefix: string): { readonly names: string[]; readonly data: (number | null)[][] } {
    const keys = [...this.series.keys()].filter((k) => k.startsWith(prefix)).sort();
    return {
      names: keys.map((k) => k.slice(prefix.length)),
      data: [[...this.times], ...keys.map((k) => [...(this.series.get(k) ?? [])])],
    };
  }
}
