/**
 * A TCP proxy for outage tests: a job connects to the proxy instead of the service, and the test
 * cuts the link while the job runs without touching the shared service itself.
 *
 * `cut()` destroys every proxied connection (the client sees ECONNRESET / an unexpected end in
 * the middle of whatever it was doing, including an open transaction or a PREPARE) and stops
 * listening, so new connections are refused; `restore()` listens again on the same port.
 * `cutOnReplyTo(text)` aims the cut: once a client sends bytes containing `text` (e.g. a
 * Postgres simple query `PREPARE TRANSACTION`), the server's reply is swallowed and the cut
 * follows — the server did it, the client never hears so.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpProxyStats {
  /** Connections accepted and forwarded. */
  readonly accepted: number;
  /** Connections destroyed by `cut()` while open. */
  readonly destroyed: number;
}

export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly clients = new Set<Socket>();
  private accepted = 0;
  private destroyed = 0;
  private trigger: { readonly text: Buffer; readonly cutDone: () => void } | undefined;
  private holding = false;

  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  /** Listens on a free port of 127.0.0.1 (or `port`) and forwards to `target`. */
  static async start(target: { host: string; port: number }, port = 0): Promise<TcpProxy> {
    const server = createServer();
    await listen(server, port);
    const proxy = new TcpProxy((server.address() as { port: number }).port, target);
    proxy.attach(server);
    return proxy;
  }

  get stats(): TcpProxyStats {
    return { accepted: this.accepted, destroyed: this.destroyed };
  }

  get up(): boolean {
    return this.server !== undefined;
  }

  /** Open proxied connections. */
  get connections(): number {
    return this.clients.size;
  }

  /** Drops every connection now and refuses new ones until `restore()`. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.destroyed += this.clients.size;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.clients.clear();
    if (server !== undefined) await new Promise((resolve) => server.close(resolve));
  }

  /**
   * A silent network partition: connections stay open (and new ones are accepted) but nothing
   * flows either way until `heal()` — no reset, no error; TCP holds the bytes.
   */
  blackhole(): void {
    this.holding = true;
    for (const socket of this.sockets) socket.pause();
  }

  heal(): void {
    this.holding = false;
    for (const socket of this.sockets) socket.resume();
  }

  /** Resolves once a reply to a request containing `text` was swallowed and the cut happened. */
  cutOnReplyTo(text: string): Promise<void> {
    return new Promise((resolve) => (this.trigger = { text: Buffer.from(text), cutDone: resolve }));
  }

  /** Accepts connections again, on the same port. */
  async restore(): Promise<void> {
    if (this.server !== undefined) return;
    const server = createServer();
    await listen(server, this.port);
    this.attach(server);
  }

  async close(): Promise<void> {
    await this.cut();
  }

  private attach(server: Server): void {
    this.server = server;
    server.on('connection', (client) => this.forward(client));
  }

  private forward(client: Socket): void {
    this.accepted += 1;
    this.clients.add(client);
    client.once('close', () => this.clients.delete(client));
    const upstream = connect(this.target);
    // Both halves live and die together: an error or close on one destroys the other.
    const pair = [client, upstream];
    for (const socket of pair) {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.once('close', () => {
        this.sockets.delete(socket);
        for (const other of pair) other.destroy();
      });
    }
    if (this.holding) for (const socket of pair) socket.pause();
    let armed = false;
    client.on('data', (chunk: Buffer) => {
      if (this.trigger !== undefined && chunk.includes(this.trigger.text)) armed = true;
      relay(client, upstream, chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      const trigger = this.trigger;
      if (!armed || trigger === undefined) return relay(upstream, client, chunk);
      this.trigger = undefined;
      void this.cut().then(trigger.cutDone);
    });
  }
}

/** Writes `chunk` on, pausing the source while the destination's buffer is full. */
function relay(from: Socket, to: Socket, chunk: Buffer): void {
  if (to.destroyed) return;
  if (!to.write(chunk)) {
    from.pause();
    to.once('drain', () => {
      if (!from.destroyed) from.resume();
    });
  }
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}
