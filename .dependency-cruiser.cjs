/**
 * The import rules of src/ (`npm run lint:deps`, part of `npm test`). Imports run down only, floor by floor:
 *
 *   edge: app.ts, gateway.ts, main.ts, cli.ts, config.ts, upstream-prices.ts, http/, admin/, openapi/
 *   tracking/ ─▶ videos/         the tracker drives VideoJobs' status checks and schedules the next (§11)
 *   videos/                      the job lifecycle: parse, normalize, derive, jobs
 *   storage/ ─▶ upstream/, store/ stored results: copier, sweeper, backends (file, S3), serving a copy
 *   webhooks/ ─▶ upstream/       outbox worker ─▶ transport, providers, encoders, router
 *   quota/    ─▶ store/          admission answers ─▶ the Store and its two implementations
 *   observability/               logger, redaction, metrics (handed what they read)
 *   domain/                      the ground floor: imports nothing of ours
 *
 * simulator/ stands alone (only the edge starts it). Each rule names the floors a folder may import; any
 * other file of src/ is above it.
 */
const floor = (name, from, allowed) => ({
  name,
  severity: 'error',
  comment: `${from} may import only ${allowed.join(', ')} (imports run down only)`,
  from: { path: `^src/${from}/` },
  to: { path: '^src/', pathNot: `^src/(${allowed.join('|')})/` },
});

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'No import circles.', from: {}, to: { circular: true } },
    floor('domain-imports-nothing', 'domain', ['domain']),
    floor('observability-above-domain', 'observability', ['domain', 'observability']),
    floor('store-above-observability', 'store', ['domain', 'observability', 'store']),
    floor('quota-above-store', 'quota', ['domain', 'observability', 'store', 'quota']),
    floor('upstream-above-observability', 'upstream', ['domain', 'observability', 'upstream']),
    floor('webhooks-above-upstream-and-store', 'webhooks', ['domain', 'observability', 'store', 'upstream', 'webhooks']),
    floor('storage-above-upstream-and-store', 'storage', ['domain', 'observability', 'store', 'upstream', 'storage']),
    floor('videos-below-edge', 'videos', ['domain', 'observability', 'store', 'quota', 'upstream', 'webhooks', 'storage', 'videos']),
    floor('tracking-above-videos', 'tracking', ['domain', 'observability', 'store', 'quota', 'upstream', 'webhooks', 'storage', 'videos', 'tracking']),
    floor('simulator-stands-alone', 'simulator', ['simulator']),
  ],
  options: {
    includeOnly: '^src/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
