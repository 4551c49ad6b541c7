/**
 * The baseline: a bare node:http pass-through proxy — no auth, no validation, no store, no translation —
 * with a keep-alive agent to the upstream. It forwards method, path, headers (adding the upstream key, as
 * any proxy holding a credential would) and streams bodies both ways. The floor a Node gateway cannot beat
 * by much. Self-contained on purpose: run.ts transpiles this file alone and runs it with plain `node`.
 */
import { Agent, createServer, request, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

const target = new URL(process.env.BENCH_UPSTREAM_URL ?? 'http://127.0.0.1:1');
const auth = `Bearer ${process.env.BENCH_UPSTREAM_KEY ?? ''}`;
const agent = new Agent({ keepAlive: true, maxSockets: 128, keepAliveMsecs: 10_000 });
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'upgrade'];

const server = createServer((req, res) => {
  const headers: OutgoingHttpHeaders = { ...req.headers, host: target.host, authorization: auth };
  for (const h of HOP_BY_HOP) delete headers[h];
  const up = request({ hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent }, (ur) => {
    const out: OutgoingHttpHeaders = { ...ur.headers };
    for (const h of HOP_BY_HOP) delete out[h];
    res.writeHead(ur.statusCode ?? 502, out);
    ur.pipe(res);
  });
  up.on('error', () => {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"bad gateway"}}');
    } else {
      res.destroy();
    }
  });
  res.on('close', () => {
    if (!res.writableFinished) up.destroy();
  });
  req.pipe(up);
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

process.on('disconnect', () => process.exit(0));
server.listen(Number(process.env.BENCH_PORT ?? 0), '127.0.0.1', () => {
  process.send?.({ ready: true, port: (server.address() as AddressInfo).port });
});
