/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`) by self and inclusive time per function.
 *
 *   npx tsx scripts/bench/cpu-profile-summary.ts FILE.cpuprofile [--top 40] [--match text] [--after fn]
 *
 * Inclusive time counts a function once per sample even when it recurses. `--match` keeps only
 * the rows whose "function file:line" contains the text. `--after workloadBatches` counts only the
 * samples after the last one inside that function (the harness: skip generating the workload).
 * Samples are wall-clock: on a loaded machine a descheduled thread's time goes to whatever ran last.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '40' }, match: { type: 'string' }, after: { type: 'string' } },
});
const file = positionals[0];
if (file === undefined) throw new Error('usage: cpu-profile-summary.ts FILE.cpuprofile [--top N] [--match text]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const byId = new Map<number, ProfileNode>();
const parent = new Map<number, number>();
for (const node of profile.nodes) {
  byId.set(node.id, node);
  for (const child of node.children ?? []) parent.set(child, node.id);
}
const nameOf = (frame: CallFrame): string => {
  const where = frame.url === '' ? '' : ` ${frame.url.replace(/^.*\/(node_modules\/)?/, '')}:${frame.lineNumber + 1}`;
  return `${frame.functionName === '' ? '(anonymous)' : frame.functionName}${where}`;
};

const stackNames = (id: number): string[] => {
  const names: string[] = [];
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at))
    names.push(nameOf((byId.get(at) as ProfileNode).callFrame));
  return names;
};
let start = 0;
if (values.after !== undefined) {
  const after = values.after;
  profile.samples.forEach((id, i) => {
    if (stackNames(id).some((n) => n.startsWith(`${after} `) || n === after)) start = i + 1;
  });
}

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  if (i < start) return;
  const dt = profile.timeDeltas[i] ?? 0;
  total += dt;
  const node = byId.get(id);
  if (node === undefined) return;
  const leaf = nameOf(node.callFrame);
  self.set(leaf, (self.get(leaf) ?? 0) + dt);
  for (const name of new Set(stackNames(id))) inclusive.set(name, (inclusive.get(name) ?? 0) + dt);
});

const top = Number(values.top);
const pct = (us: number): string => `${((us / total) * 100).toFixed(1).padStart(5)} %`;
const table = (title: string, rows: Map<string, number>): void => {
  console.log(`\n${title}`);
  [...rows.entries()]
    .filter(([name]) => values.match === undefined || name.includes(values.match))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .forEach(([name, us]) => console.log(`${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}`));
};
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled`);
table('self', self);
table('inclusive', inclusive);
