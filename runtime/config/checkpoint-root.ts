/**
 * Where a job keeps its checkpoints and local state when nothing configures it. Never relative to
 * the working directory: a job started from another directory must find the same checkpoints
 * (otherwise it starts fresh and rolls back what its last run prepared).
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

type Environ = Readonly<Record<string, string | undefined>>;

/**
 * `$CDCFLOW_HOME`, else `$XDG_STATE_HOME/cdcflow`, else `~/.local/state/cdcflow`; always absolute.
 * (XDG says a relative `XDG_STATE_HOME` is invalid and must be ignored.)
 */
export function cdcflowHome(environ: Environ = process.env): string {
  const home = environ['CDCFLOW_HOME'];
  if (home !== undefined && home !== '') return resolve(home);
  const xdg = environ['XDG_STATE_HOME'];
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, 'cdcflow');
  return join(homedir(), '.local', 'state', 'cdcflow');
}

/** The default checkpoint root: `<cdcflow home>/checkpoints`; a job's folder is `<root>/<job name>`. */
export function defaultCheckpointRoot(environ: Environ = process.env): string {
  return join(cdcflowHome(environ), 'checkpoints');
}

/** The default local working state (RocksDB): `<cdcflow home>/state`. */
export function defaultStateDir(environ: Environ = process.env): string {
  return join(cdcflowHome(environ), 'state');
}
