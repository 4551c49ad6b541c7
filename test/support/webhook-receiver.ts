import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** When the request arrived whole (Date.now()). */
  readonly at: number;
}

/** How the receiver answers the next request: a status, a dropped connection, a hang, a redirect, or a flood. */
export type Answer =
  | { kind: 'status'; status: number }
  | { kind: 'reset' }
  | { kind: 'hang' }
  | { kind: 'redirect'; location: string }
  | { kind: 'flood'; bytes: number };

/** A real webhook endpoint on 127.0.0.1 that records what it receives and answers as told. */
export class WebhookReceiver {
  readonly received: Received[] = [];
  /** Whether each flood answer was written out whole (the gateway should stop reading early). */
  readonly floods: boolean[] = [];
  answer: Answer = { kind: 'status', status: 204 };
  private readonly server: Server;
  private readonly hanging: ServerResponse[] = [];
  private waiters: Array<() => void> = [];
  url = '';

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
        for (const w of this.waiters.splice(0)) w();
        this.respond(res);
      });
    });
  }

  private respond(res: ServerResponse): void {
    const a = this.answer;
    switch (a.kind) {
      case 'status':
        res.writeHead(a.status).end();
        return;
      case 'reset':
        res.socket?.destroy();
        return;
      case 'hang':
        this.hanging.push(res);
        return;
      case 'redirect':
        res.writeHead(307, { location: a.location }).end();
        return;
      case 'flood': {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const index = this.floods.push(false) - 1;
        const chunk = Buffer.alloc(64 * 1024, 120);
        let left = a.bytes;
        const pump = () => {
          while (left > 0) {
            left -= chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end(() => (this.floods[index] = true));
        };
        res.on('error', () => undefined);
        pump();
        return;
      }
    }
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  get hostPort(): string {
    return new URL(this.url).host;
  }

  /** Resolves once at least `n` requests have arrived. */
  async waitFor(n: number, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < n) {
      if (Date.now() > deadline) throw new Error(`receiver got ${this.received.length} of ${n} requests`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  async close(): Promise<void> {
    for (const r of this.hanging) r.socket?.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
