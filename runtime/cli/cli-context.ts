/**
 * What every command needs: the checkpoint root (where jobs register and keep checkpoints), the
 * configured REST token if any, and how to print. Resolved like a job's own configuration
 * (`--checkpoint-root` > CDCFLOW_CHECKPOINT_DIR > `--config` file > the default), so the CLI and
 * the jobs agree without being told twice.
 */
import { z } from 'zod';
import { loadJobConfig } from '../config/index.ts';

export interface CliOptions {
  readonly checkpointRoot?: string;
  readonly config?: string;
  readonly json?: boolean;
}

export interface CliContext {
  readonly root: string;
  /** CDCFLOW_REST_TOKEN / rest.token / rest.tokenFile, for jobs registered with a configured token. */
  readonly configuredToken: string | undefined;
  readonly configuredTokenFile: string | undefined;
  readonly json: boolean;
  print(line: string): void;
  /** Prints `value` as JSON with --json, else the human lines. */
  output(value: unknown, lines: () => readonly string[]): void;
}

export function cliContext(options: CliOptions): CliContext {
  const argv = [
    ...(options.config === undefined ? [] : ['--config', options.config]),
    ...(options.checkpointRoot === undefined ? [] : ['--checkpoint-root', options.checkpointRoot]),
  ];
  // `environ` given: the CLI is no job, it must not hand its configuration to child processes.
  const config = loadJobConfig({ name: 'cdcflow-cli', settings: z.looseObject({}), argv, environ: process.env });
  const json = options.json === true;
  const print = (line: string) => void process.stdout.write(`${line}\n`);
  return {
    root: config.checkpoints.root,
    configuredToken: config.rest.token,
    configuredTokenFile: config.rest.tokenFile,
    json,
    print,
    output: (value, lines) => (json ? print(JSON.stringify(value, null, 2)) : lines().forEach(print)),
  };
}
