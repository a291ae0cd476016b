import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Everything the stack downloads or writes lives outside the source tree, so a clean clone stays
 * clean and a second `up` reuses jars and data. Override with CDCFLOW_HOME.
 */
export const stackHome = process.env['CDCFLOW_HOME'] ?? join(homedir(), '.cache', 'cdcflow');

export const stackPaths = {
  home: stackHome,
  jars: (name: string) => join(stackHome, 'jars', name),
  data: (service: string) => join(stackHome, 'data', service),
  log: (service: string) => join(stackHome, 'logs', `${service}.log`),
  pid: (service: string) => join(stackHome, 'run', `${service}.pid`),
  run: join(stackHome, 'run'),
  logs: join(stackHome, 'logs'),
};
