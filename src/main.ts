import { ConfigError, DEMO_API_KEY, exitForConfigError, loadConfig } from './config.js';
import { startGateway } from './gateway.js';
import { createLogger } from './observability/logger.js';
import { UpstreamSimulator } from './simulator/server.js';

/** Process entry: config → (simulator) → gateway → signals. */
async function main() {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) exitForConfigError('grok-video-gateway', err);
    throw err;
  }
  const logger = createLogger(config.logLevel);
  // Until the gateway is up there is nothing to drain: a stop signal during start-up ends the process at once.
  const early = () => process.exit(0);
  process.once('SIGTERM', early);
  process.once('SIGINT', early);
  if (config.redisUrl) {
    logger.warn('REDIS_URL is not used: set DATABASE_URL (postgres://…) for a store shared by several replicas');
  }

  let upstreamBaseUrl = config.upstreamBaseUrl;
  let upstreamApiKeys = config.upstreamApiKeys;
  let simulator: UpstreamSimulator | undefined;
  let upstreamMediaHosts: string[] | undefined;
  if (!upstreamBaseUrl && !config.upstreams) {
    const simKey = 'sim-upstream-key';
    // UPSTREAM_KIND picks which protocol the simulator speaks; in xai mode it is its own media host too.
    simulator = new UpstreamSimulator({ apiKeys: [simKey], kind: config.upstreamKind });
    const simUrl = await simulator.listen(0);
    upstreamBaseUrl = simUrl;
    upstreamApiKeys = [simKey];
    upstreamMediaHosts = [new URL(simUrl).host];
  }

  const gateway = await startGateway({
    config,
    logger,
    upstreamBaseUrl,
    upstreamApiKeys,
    ...(upstreamMediaHosts ? { upstreamMediaHosts } : {}),
    acceptDemoKey: simulator !== undefined,
  });
  if (simulator) {
    const banner = [
      '',
      '  ==== SIMULATED UPSTREAM ====================================================',
      '  UPSTREAM_BASE_URL is not set, so the gateway runs against its built-in',
      '  simulator: videos are fake test patterns and nothing reaches a real provider.',
      '  Set UPSTREAM_BASE_URL and UPSTREAM_API_KEY to use a real upstream.',
      '  ============================================================================',
      `  Demo API key (simulator only): ${DEMO_API_KEY}`,
      `  Try: curl ${gateway.url}/v1/videos -H "Authorization: Bearer ${DEMO_API_KEY}" \\`,
      `         -H "Content-Type: application/json" -d '{"model":"grok-imagine-video","prompt":"a red fox in snow"}'`,
      '',
    ];
    process.stderr.write(`${banner.join('\n')}\n`);
  }

  // After the banner, so that whoever waits for this line also has the demo key.
  logger.info({ url: gateway.url, store: gateway.store.kind, upstream: simulator ? 'simulator' : 'configured' }, 'gateway listening');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, deadlineMs: config.shutdownTimeoutMs }, 'draining');
    gateway
      .shutdown()
      .then(() => simulator?.close())
      .then(
        () => {
          logger.info('stopped');
          process.exit(0);
        },
        (err: unknown) => {
          logger.error({ err: { message: (err as Error).message } }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.off('SIGTERM', early);
  process.off('SIGINT', early);
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`grok-video-gateway: ${(err as Error).message}\n`);
  process.exit(1);
});
