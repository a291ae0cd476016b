/** A service of the stack could not be installed, started or reached. */
export class StackError extends Error {
  constructor(
    readonly service: string,
    message: string,
    readonly port?: number,
    readonly logFile?: string,
  ) {
    const where = [port === undefined ? '' : `port ${port}`, logFile === undefined ? '' : `log ${logFile}`]
      .filter(Boolean)
      .join(', ');
    super(`[${service}] ${message}${where ? ` (${where})` : ''}`);
    this.name = 'StackError';
  }
}
