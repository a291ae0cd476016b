/**
 * The job's log: pino, JSON lines on stderr by default (timestamp, level, job, operator uid,
 * subtask), human-readable through pino-pretty when stderr is a terminal. Every layer above
 * `operators/` logs through `rootLogger()` or a child of it, so one process writes one format —
 * worker threads included (each builds its own pino on the same fd, same format, with `subtask`).
 *
 * `CDCFLOW_LOG_LEVEL` (trace|debug|info|warn|error|silent, default info) and `CDCFLOW_LOG_FORMAT`
 * (json|pretty, default: pretty on a TTY) override the defaults. kafkajs logs through
 * `kafkajsLogCreator` into the same logger instead of writing its own format.
 */
import { isMainThread, threadId } from 'node:worker_threads';
import { pino, type Logger, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

/** Fields every line of a job carries (pino `bindings`). */
export interface LogContext {
  readonly job?: string;
  /** Operator uid. */
  readonly uid?: string;
  readonly subtask?: number;
}

let root: Logger | undefined;

function level(): string {
  const wanted = process.env['CDCFLOW_LOG_LEVEL'];
  return wanted === undefined || wanted === '' ? 'info' : wanted;
}

function wantsPretty(): boolean {
  const format = process.env['CDCFLOW_LOG_FORMAT'];
  if (format === 'json') return false;
  if (format === 'pretty') return true;
  return process.stderr.isTTY === true;
}

/** The process's logger (created on first use). */
export function rootLogger(): Logger {
  if (root !== undefined) return root;
  const options: LoggerOptions = {
    level: level(),
    base: isMainThread ? { pid: process.pid } : { pid: process.pid, thread: threadId },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  // Synchronous writes: a job that exits right after "stopped" must not lose its last lines.
  const stream = wantsPretty()
    ? pretty({
        destination: 2,
        sync: true,
        colorize: process.stderr.isTTY === true,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
      })
    : pino.destination({ dest: 2, sync: true });
  root = pino(options, stream);
  return root;
}

/** Replace the process's logger (tests, embedding applications). */
export function setRootLogger(logger: Logger): void {
  root = logger;
}

/** A child logger with the job's fields. */
export function loggerFor(context: LogContext, parent: Logger = rootLogger()): Logger {
  const bindings: Record<string, string | number> = {};
  if (context.job !== undefined) bindings['job'] = context.job;
  if (context.uid !== undefined) bindings['uid'] = context.uid;
  if (context.subtask !== undefined) bindings['subtask'] = context.subtask;
  return parent.child(bindings);
}

/**
 * A logger whose messages go to a `(line) => void` (the job option `log`): a job that hands its
 * own line sink gets every lifecycle, restart and checkpoint line there, not only the legacy ones.
 */
export function lineSinkLogger(log: (line: string) => void, bindings: Record<string, string | number> = {}): Logger {
  const write = (chunk: string): void => {
    const entry = JSON.parse(chunk) as { msg?: unknown };
    if (typeof entry.msg === 'string') log(entry.msg);
  };
  return pino({ level: level(), base: bindings }, { write });
}

/**
 * A `(line) => void` for options that take one (sinks' `log`), writing at `info` into `logger`.
 * Kept so existing string-based hooks land in the structured log.
 */
export function lineLogger(logger: Logger, at: 'info' | 'warn' = 'info'): (line: string) => void {
  return (line) => logger[at](line);
}

/** kafkajs log levels (kafkajs `logLevel`): NOTHING 0, ERROR 1, WARN 2, INFO 4, DEBUG 5. */
const KAFKAJS_LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  1: 'error',
  2: 'warn',
  4: 'info',
  5: 'debug',
};

interface KafkajsLogEntry {
  readonly namespace: string;
  readonly level: number;
  readonly label: string;
  readonly log: { readonly message: string; readonly timestamp?: string; readonly [field: string]: unknown };
}

/**
 * kafkajs `logCreator`: its entries become lines of `logger` (`component: 'kafkajs'`, its
 * namespace, its fields), at the matching level.
 */
export function kafkajsLogCreator(logger: Logger): (level: number) => (entry: KafkajsLogEntry) => void {
  const kafka = logger.child({ component: 'kafkajs' });
  return () =>
    ({ namespace, level: entryLevel, log }) => {
      const at = KAFKAJS_LEVELS[entryLevel];
      if (at === undefined) return;
      const { message, timestamp: _timestamp, ...fields } = log;
      kafka[at]({ namespace, ...fields }, message);
    };
}
