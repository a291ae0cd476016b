/**
 * The command-line flags every job file accepts (`npx tsx jobs/x.ts --parallelism 2`), and that
 * `cdcflow run JOB.ts ...` passes through to it unchanged: one list, so the CLI's help and the
 * job's parser cannot disagree.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from './config-error.ts';

export interface JobFlagSpec {
  readonly flag: string;
  readonly type: 'string' | 'boolean';
  /** What the value looks like in help, for string flags. */
  readonly value?: string;
  readonly multiple?: boolean;
  readonly description: string;
}

export const JOB_FLAGS: readonly JobFlagSpec[] = [
  { flag: 'config', type: 'string', value: 'FILE', description: 'JSON configuration file (also CDCFLOW_CONFIG)' },
  {
    flag: 'name',
    type: 'string',
    value: 'NAME',
    description: 'job name: names its checkpoint folder, consumer group default and transactional ids',
  },
  { flag: 'parallelism', type: 'string', value: 'N', description: 'subtasks per operator' },
  {
    flag: 'from-savepoint',
    type: 'string',
    value: 'P',
    description: 'restore from this savepoint (name or path); fails rather than fall back',
  },
  {
    flag: 'from-checkpoint',
    type: 'string',
    value: 'P',
    description: 'restore from this checkpoint (id or path); fails rather than fall back',
  },
  {
    flag: 'from-latest',
    type: 'boolean',
    description: 'restore from the newest checkpoint or savepoint (the default)',
  },
  {
    flag: 'fresh',
    type: 'boolean',
    description: "ignore existing checkpoints and start from the sources' initial positions",
  },
  {
    flag: 'discard-sink-transactions',
    type: 'boolean',
    description: "a fresh start may roll back this job's prepared sink transactions",
  },
  {
    flag: 'allow-replay',
    type: 'boolean',
    description:
      'restore although an at-least-once sink with side effects committed past the restore point (its records are sent again)',
  },
  {
    flag: 'checkpoint-root',
    type: 'string',
    value: 'DIR',
    description: 'checkpoint root (also CDCFLOW_CHECKPOINT_DIR)',
  },
  { flag: 'rest-port', type: 'string', value: 'PORT', description: 'REST API port (0: any free port)' },
  { flag: 'rest-host', type: 'string', value: 'HOST', description: 'REST API address (non-loopback needs a token)' },
  {
    flag: 'set',
    type: 'string',
    value: 'PATH=VALUE',
    multiple: true,
    description: 'set any field, e.g. --set checkpoints.intervalMs=500 or --set topic=x (job settings)',
  },
];

/** One value from the command line: the configuration path it sets and the flag that set it. */
export interface FlagAssignment {
  readonly path: readonly string[];
  readonly value: unknown;
  /** A raw string the loader converts to the field's type. */
  readonly raw: boolean;
  readonly origin: string;
}

export interface ParsedJobFlags {
  readonly configFile: string | undefined;
  readonly assignments: readonly FlagAssignment[];
}

const RESTORE_FLAGS = ['from-savepoint', 'from-checkpoint', 'from-latest', 'fresh'] as const;

export function parseJobFlags(argv: readonly string[]): ParsedJobFlags {
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: Object.fromEntries(JOB_FLAGS.map((f) => [f.flag, { type: f.type, multiple: f.multiple === true }])),
    }).values;
  } catch (error) {
    const known = JOB_FLAGS.map((f) => `--${f.flag}`).join(', ');
    throw new ConfigError(`${error instanceof Error ? error.message : String(error)}. A job accepts: ${known}`, {
      cause: error,
    });
  }
  const str = (flag: string) => (typeof values[flag] === 'string' ? values[flag] : undefined);
  const assignments: FlagAssignment[] = [];
  const set = (path: string[], value: unknown, flag: string, raw = false) =>
    assignments.push({ path, value, raw, origin: `flag --${flag}` });

  const restoreFlags = RESTORE_FLAGS.filter((f) => values[f] !== undefined && values[f] !== false);
  if (restoreFlags.length > 1)
    throw new ConfigError(
      `choose one of ${restoreFlags.map((f) => `--${f}`).join(', ')}: they say where to restore from`,
    );
  const savepoint = str('from-savepoint');
  const checkpoint = str('from-checkpoint');
  if (savepoint !== undefined) set(['restore'], { savepoint }, 'from-savepoint');
  if (checkpoint !== undefined)
    set(['restore'], { checkpoint: /^\d+$/.test(checkpoint) ? Number(checkpoint) : checkpoint }, 'from-checkpoint');
  if (values['from-latest'] === true) set(['restore'], 'latest', 'from-latest');
  if (values['fresh'] === true) set(['restore'], 'none', 'fresh');
  if (values['discard-sink-transactions'] === true) set(['discardSinkTransactions'], true, 'discard-sink-transactions');
  if (values['allow-replay'] === true) set(['allowReplay'], true, 'allow-replay');

  const name = str('name');
  if (name !== undefined) set(['name'], name, 'name');
  const parallelism = str('parallelism');
  if (parallelism !== undefined) set(['parallelism'], parallelism, 'parallelism', true);
  const root = str('checkpoint-root');
  if (root !== undefined) set(['checkpoints', 'root'], root, 'checkpoint-root');
  const port = str('rest-port');
  if (port !== undefined) set(['rest', 'port'], port, 'rest-port', true);
  const host = str('rest-host');
  if (host !== undefined) set(['rest', 'host'], host, 'rest-host');

  const sets = values['set'];
  for (const entry of Array.isArray(sets) ? sets : []) {
    const text = String(entry);
    const eq = text.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set ${text}: expected PATH=VALUE, e.g. --set checkpoints.intervalMs=500`);
    assignments.push({
      path: text.slice(0, eq).split('.'),
      value: text.slice(eq + 1),
      raw: true,
      origin: `flag --set ${text.slice(0, eq)}`,
    });
  }
  return { configFile: str('config'), assignments };
}
