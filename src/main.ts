import { ConfigError, DEMO_API_KEY, exitForConfigError, loadConfig } from './config.js';
import { DEMO_ADMIN_TOKEN_FILE, demoAdminToken, hasConfiguredUpstream, refuseSharedStoreWithoutUpstream } from './demo-mode.js';
import { startGateway, type LocalUpstream } from './gateway.js';
import { createLogger } from './observability/logger.js';
import { UpstreamSimulator } from './simulator/server.js';
import type { UpstreamKind } from './domain/upstream-kinds.js';
import { ModelCatalog } from './domain/models.js';

const KIND_LABELS: Record<UpstreamKind, string> = { newapi: 'a new-api style reseller', xai: "xAI's own API" };

/**
 * With no upstream configured, one built-in simulator per kind, both routed to, so that a first `npm start`
 * shows the routing: a model both kinds know is spread over both. Each xAI simulator is its own media host.
 * Each accepts the models the gateway's table gives its kind, so that models added by CONFIG_FILE work too.
 */
async function startSimulators(catalog: ModelCatalog): Promise<{ upstreams: LocalUpstream[]; close(): Promise<void> }> {
  const sims: UpstreamSimulator[] = [];
  const upstreams: LocalUpstream[] = [];
  for (const kind of Object.keys(KIND_LABELS) as UpstreamKind[]) {
    const key = `sim-${kind}-key`;
    const sim = new UpstreamSimulator({ apiKeys: [key], kind, models: catalog.specs().filter((m) => m.kinds[kind]) });
    const url = await sim.listen(0);
    sims.push(sim);
    upstreams.push({ id: `simulator-${kind}`, kind, baseUrl: url, keys: [key], mediaHosts: [new URL(url).host] });
  }
  return { upstreams, close: async () => void (await Promise.all(sims.map((s) => s.close()))) };
}

/** Loud on purpose: nobody should mistake fake test-pattern videos for a real provider. */
/** `stored`: completed videos are copied to storage (STORAGE_URL), so they outlive the simulators' memory. */
function simulatorBanner(url: string, upstreams: readonly LocalUpstream[], catalog: ModelCatalog, adminToken: string | undefined, stored: boolean): string {
  return [
    '',
    '  ==== SIMULATED UPSTREAMS ===================================================',
    '  No upstream is configured, so the gateway routes to built-in simulators, one',
    '  per upstream kind: videos are fake test patterns, no real provider is reached.',
    ...upstreams.map((u) => `    ${u.id} (simulated, ${KIND_LABELS[u.kind]}): ${catalog.idsOfKind(u.kind).join(', ')}`),
    '  A model several of them serve is spread over them: GET /admin/upstreams (or',
    '  grok-gateway upstreams) shows where the jobs went.',
    '  The simulators keep their jobs in memory: a restart forgets them (running',
    ...(stored
      ? ['  videos then fail; finished ones are still served from their stored copies),', '  though the gateway remembers its records in DATA_DIR.']
      : ['  videos then fail; finished ones answer 404 on content: STORAGE_URL=none', '  keeps no copies), though the gateway remembers its records in DATA_DIR.']),
    '  For real upstreams set UPSTREAM_BASE_URL and UPSTREAM_API_KEY (UPSTREAM_KIND=xai',
    '  for an xAI key), or upstreams in CONFIG_FILE.',
    '  ============================================================================',
    `  Demo API key (simulator only): ${DEMO_API_KEY}`,
    adminToken
      ? `  Admin token (demo, kept in DATA_DIR/${DEMO_ADMIN_TOKEN_FILE}): ${adminToken}`
      : '  Admin token: the ADMIN_TOKEN you set',
    `  Try: curl ${url}/v1/videos -H "Authorization: Bearer ${DEMO_API_KEY}" \\`,
    `         -H "Content-Type: application/json" -d '{"model":"grok-imagine-video","prompt":"a red fox in snow"}'`,
    '',
    '',
  ].join('\n');
}

/** Process entry: config → (simulator) → gateway → signals. */
async function main() {
  let config;
  let generatedAdminToken: string | undefined;
  try {
    config = loadConfig();
    refuseSharedStoreWithoutUpstream(config);
    if (!hasConfiguredUpstream(config) && !config.adminToken) {
      generatedAdminToken = demoAdminToken(config.dataDir);
      config = { ...config, adminToken: generatedAdminToken };
    }
  } catch (err) {
    if (err instanceof ConfigError) exitForConfigError('grok-video-gateway', err);
    throw err;
  }
  const logger = createLogger(config.logLevel);
  // Until the gateway is up there is nothing to drain: a stop signal during start-up ends the process at once.
  const early = () => process.exit(0);
  process.once('SIGTERM', early);
  process.once('SIGINT', early);
  if (!config.adminToken) {
    logger.warn('ADMIN_TOKEN is unset: the admin API and console are disabled (teams and keys can still be managed with the grok-gateway CLI on the same store)');
  }
  if (config.redisUrl) {
    logger.warn('REDIS_URL is not used: set DATABASE_URL (postgres://…) for a store shared by several replicas');
  }

  const catalog = new ModelCatalog(config.models, config.defaultModel);
  for (const { variable, instead } of config.retired) logger.warn({ variable, instead }, `${variable} is no longer read`);
  const fileDefault = config.models?.defaultModel;
  if (config.defaultModel && fileDefault && catalog.resolve(config.defaultModel)?.id !== catalog.resolve(fileDefault)?.id) {
    logger.warn({ defaultModel: config.defaultModel, configFileDefaultModel: fileDefault }, "DEFAULT_MODEL overrides CONFIG_FILE's defaultModel");
  }
  const simulators = hasConfiguredUpstream(config) ? undefined : await startSimulators(catalog);
  const gateway = await startGateway({
    config,
    logger,
    upstreamBaseUrl: config.upstreamBaseUrl,
    ...(simulators ? { localUpstreams: simulators.upstreams } : {}),
    acceptDemoKey: simulators !== undefined,
  });
  if (simulators) process.stderr.write(simulatorBanner(gateway.url, simulators.upstreams, catalog, generatedAdminToken, config.storage.target !== undefined));

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, deadlineMs: config.shutdownTimeoutMs }, 'draining');
    gateway
      .shutdown()
      .then(() => simulators?.close())
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
  // The drain handlers go on before the early ones come off: a signal caught while a signal has no listener
  // at all is lost (Node drops its watcher), and the process would then ignore that SIGTERM.
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.off('SIGTERM', early);
  process.off('SIGINT', early);

  // Last, after the banner and the handlers: whoever waits for this line has the demo key and may signal.
  // metricsUrl: a METRICS_PORT of 0 picks a free port, and this line is the only place that names it.
  const metricsUrl = gateway.metricsUrl === gateway.url ? {} : { metricsUrl: gateway.metricsUrl };
  logger.info({ url: gateway.url, ...metricsUrl, store: gateway.store.kind, upstream: simulators ? 'simulator' : 'configured' }, 'gateway listening');
}

main().catch((err: unknown) => {
  process.stderr.write(`grok-video-gateway: ${(err as Error).message}\n`);
  process.exit(1);
});
