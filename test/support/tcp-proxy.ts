import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of a real server, to make that server disappear and come back without
 * stopping it: `refuse` closes the listener and every connection (what a stopped server looks like),
 * `blackhole` keeps connections open but forwards nothing (a dead link), `forward` restores service.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private mode: 'forward' | 'blackhole' = 'forward';
  private answersToDrop = 0;
  port = 0;

  constructor(
    private readonly target: { host: string; port: number },
  ) {}

  async listen(): Promise<string> {
    const server = createServer((client) => {
      if (this.mode === 'blackhole') return this.hold(client);
      const upstream = connect(this.target.port, this.target.host);
      // Whether the server has begun answering the client's latest request (HTTP/1.1: one at a time).
      let answering = false;
      this.hold(client);
      this.hold(upstream);
      client.on('data', (d) => {
        if (this.mode !== 'forward') return;
        answering = false;
        upstream.write(d);
      });
      upstream.on('data', (d) => {
        if (this.mode !== 'forward') return;
        if (this.answersToDrop > 0 && !answering) {
          this.answersToDrop--;
          return client.destroy();
        }
        answering = true;
        client.write(d);
      });
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
    this.mode = 'forward';
    return `127.0.0.1:${this.port}`;
  }

  private hold(s: Socket) {
    this.sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => this.sockets.delete(s));
  }

  /** Stops listening and resets every connection: the port now refuses. */
  async refuse(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  /** Connections stay open, new ones are accepted, and no byte goes through in either direction. */
  blackhole(): void {
    this.mode = 'blackhole';
  }

  /**
   * The next `n` answers the server begins are cut instead, with their connections: the server did the work,
   * and the client never hears of it (an answer lost to a dropped connection).
   */
  dropNextAnswers(n: number): void {
    this.answersToDrop = n;
  }

  /** Back in service on the same port. */
  async restore(): Promise<void> {
    if (this.server) {
      this.mode = 'forward';
      for (const s of this.sockets) s.destroy();
      return;
    }
    await this.listen();
  }

  close(): Promise<void> {
    return this.refuse();
  }
}
