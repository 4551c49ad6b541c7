import { UpstreamSimulator } from './server.js';

/**
 * Standalone simulated upstream, for the compose file and the container smoke test: the gateway then talks
 * to it over the network exactly as it would to the real provider, with UPSTREAM_BASE_URL and a key.
 */
function fail(message: string): never {
  process.stderr.write(`grok-video-simulator: ${message}\n`);
  // 78 (EX_CONFIG), as the gateway uses for bad configuration, so supervisors do not restart in a loop blindly.
  process.exit(78);
}

/** A whole-number variable, or undefined when unset (the simulator's own default then). */
function wholeNumber(name: string, min: number): number | undefined {
  const raw = process.env[name]?.trim();
  if (!raw) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < min) fail(`${name} must be a whole number ≥ ${min}, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

function main() {
  // Comma-separated like the gateway's UPSTREAM_API_KEY, so one variable can feed both sides.
  const apiKeys = (process.env.SIM_API_KEY ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  if (apiKeys.length === 0) fail('SIM_API_KEY is required (the key the gateway must present as UPSTREAM_API_KEY)');

  const rawPort = process.env.SIM_PORT?.trim() || '9090';
  const port = Number(rawPort);
  if (!/^\d+$/.test(rawPort) || port > 65_535) fail(`SIM_PORT must be a port number, got ${JSON.stringify(rawPort)}`);
  const host = process.env.SIM_HOST?.trim() || '127.0.0.1';

  const kind = process.env.SIMULATOR_KIND?.trim() || 'newapi';
  if (kind !== 'newapi' && kind !== 'xai') fail(`SIMULATOR_KIND must be newapi or xai, got ${JSON.stringify(kind)}`);
  const completeAfterMs = wholeNumber('SIM_COMPLETE_AFTER_MS', 0);
  const videoBytes = wholeNumber('SIM_VIDEO_BYTES', 1);
  const createDelayMs = wholeNumber('SIM_CREATE_DELAY_MS', 0);
  const simulator = new UpstreamSimulator({
    apiKeys,
    kind,
    ...(completeAfterMs !== undefined ? { completeAfterMs } : {}),
    ...(videoBytes !== undefined ? { videoBytes } : {}),
    ...(createDelayMs !== undefined ? { createDelayMs } : {}),
  });
  simulator.listen(port, host).then(
    (url) => {
      // Loud on purpose: nobody should mistake fake test-pattern videos for a real provider.
      process.stderr.write(`SIMULATED UPSTREAM (${kind}) listening on ${url} (fake videos; no real provider is reached)\n`);
    },
    (err: Error) => fail(`cannot listen on ${host}:${port}: ${err.message}`),
  );

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void simulator.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
