import { request } from 'node:http';

/**
 * The container's HEALTHCHECK: exit 0 when the gateway on this host answers GET /healthz with 200, else 1.
 * Liveness only (not /readyz): an unreachable upstream must not get a healthy replica restarted.
 * Plain node:http, no keep-alive, so the process exits as soon as it has its answer.
 */
const TIMEOUT_MS = 3_000;

function done(ok: boolean, reason?: string): never {
  // Docker keeps this output in `docker inspect`; it names the port and status only, never a secret.
  if (!ok && reason) process.stderr.write(`healthcheck: ${reason}\n`);
  process.exit(ok ? 0 : 1);
}

const rawPort = process.env.PORT?.trim() || '8080';
const port = Number(rawPort);
if (!/^\d+$/.test(rawPort) || port < 1 || port > 65_535) done(false, `PORT is not a port number: ${JSON.stringify(rawPort)}`);

// A hard deadline for the whole check, whatever stage (connect, headers, body) is stuck.
setTimeout(() => done(false, `no answer from 127.0.0.1:${port}/healthz within ${TIMEOUT_MS} ms`), TIMEOUT_MS);

const req = request({ host: '127.0.0.1', port, path: '/healthz', method: 'GET', agent: false, timeout: TIMEOUT_MS }, (res) => {
  res.resume();
  done(res.statusCode === 200, `GET /healthz answered ${res.statusCode ?? 'nothing'}`);
});
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', (err) => done(false, `GET 127.0.0.1:${port}/healthz failed: ${err.message}`));
req.end();
