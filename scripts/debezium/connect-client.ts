/**
 * The few Kafka Connect REST calls cdcflow's tests, demo and scripts need: create/replace a
 * connector, read its status, wait until it and its task run, delete it. Errors carry Connect's
 * own message (a bad config answers 400 with the reason).
 */
export type ConnectorConfig = Readonly<Record<string, string>>;

export interface ConnectorStatus {
  readonly name: string;
  readonly connector: { readonly state: string; readonly worker_id: string; readonly trace?: string };
  readonly tasks: readonly { readonly id: number; readonly state: string; readonly trace?: string }[];
}

export class ConnectError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ConnectError';
  }
}

export class ConnectClient {
  constructor(
    readonly url: string,
    /** How long one REST call may take. */
    private readonly requestTimeoutMs = 30_000,
  ) {}

  /** Whether the worker answers at all (a quick probe: tests skip without one). */
  async available(): Promise<boolean> {
    try {
      return (
        await fetch(`${this.url}/connectors`, { signal: AbortSignal.timeout(Math.min(2_000, this.requestTimeoutMs)) })
      ).ok;
    } catch {
      return false;
    }
  }

  private async call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.requestTimeoutMs),
      });
    } catch (error) {
      throw new ConnectError(
        `Kafka Connect at ${this.url} did not answer ${method} ${path} (${String(error)}); start it with \`npm run stack -- up debezium\``,
      );
    }
    const text = await response.text();
    const json: unknown = text === '' ? undefined : JSON.parse(text);
    return { status: response.status, json };
  }

  /** Creates the connector, or replaces its config (PUT is idempotent). Retries Connect's 409 during a rebalance. */
  async put(name: string, config: ConnectorConfig): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const { status, json } = await this.call('PUT', `/connectors/${encodeURIComponent(name)}/config`, config);
      if (status < 300) return;
      if (status === 409 && attempt < 30) {
        await sleep(1000);
        continue;
      }
      throw new ConnectError(`Kafka Connect refused connector ${name} (${status}): ${messageOf(json)}`, status);
    }
  }

  async status(name: string): Promise<ConnectorStatus | undefined> {
    const { status, json } = await this.call('GET', `/connectors/${encodeURIComponent(name)}/status`);
    if (status === 404) return undefined;
    if (status >= 300) throw new ConnectError(`status of connector ${name} (${status}): ${messageOf(json)}`, status);
    return json as ConnectorStatus;
  }

  async list(): Promise<string[]> {
    const { status, json } = await this.call('GET', '/connectors');
    if (status >= 300) throw new ConnectError(`listing connectors (${status}): ${messageOf(json)}`, status);
    return json as string[];
  }

  /** Waits until the connector and all its tasks (at least one) are RUNNING; fails fast on FAILED with Connect's trace. */
  async waitRunning(name: string, timeoutMs = 60_000): Promise<ConnectorStatus> {
    const deadline = Date.now() + timeoutMs;
    let last: ConnectorStatus | undefined;
    for (;;) {
      last = await this.status(name).catch(() => undefined);
      const failed = last?.tasks.find((t) => t.state === 'FAILED');
      if (failed !== undefined || last?.connector.state === 'FAILED') {
        const trace = failed?.trace ?? last?.connector.trace ?? '';
        throw new ConnectError(`connector ${name} FAILED:\n${trace.split('\n').slice(0, 12).join('\n')}`);
      }
      if (
        last !== undefined &&
        last.connector.state === 'RUNNING' &&
        last.tasks.length > 0 &&
        last.tasks.every((t) => t.state === 'RUNNING')
      )
        return last;
      if (Date.now() > deadline)
        throw new ConnectError(
          `connector ${name} not RUNNING within ${timeoutMs} ms; last status: ${JSON.stringify(last)}`,
        );
      await sleep(300);
    }
  }

  /** Deletes the connector; a missing one is fine. */
  async delete(name: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const { status, json } = await this.call('DELETE', `/connectors/${encodeURIComponent(name)}`);
      if (status < 300 || status === 404) return;
      if (status === 409 && attempt < 30) {
        await sleep(1000);
        continue;
      }
      throw new ConnectError(`deleting connector ${name} (${status}): ${messageOf(json)}`, status);
    }
  }
}

function messageOf(json: unknown): string {
  if (typeof json === 'object' && json !== null && 'message' in json)
    return String((json as { message: unknown }).message);
  return JSON.stringify(json);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
