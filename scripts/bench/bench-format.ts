/** Number formatting and the machine line every benchmark prints beside its figures. */
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';

export const median = (xs: readonly number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
export const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
export const mb = (bytes: number): string => `${fmt(bytes / 1e6, 1)} MB`;
export const loadAverage = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
/** MB, or kB below 1 MB (a small window state's checkpoints are kilobytes). */
export const size = (bytes: number): string => (bytes < 1e6 ? `${fmt(bytes / 1e3, 1)} kB` : mb(bytes));

/** Cores, CPU model, RAM, Node and the load average now (figures from a loaded machine are not comparable). */
export function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${availableParallelism()} cores (${cpu}), ${fmt(totalmem() / 2 ** 30, 1)} GiB RAM, Node ${process.version}, load average ${loadAverage()}`;
}
