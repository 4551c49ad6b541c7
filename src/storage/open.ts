import type { StorageConfig } from './config.js';
import type { Metrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import type { Clock } from '../domain/quota-policy.js';
import type { Store } from '../store/types.js';
import type { UpstreamRouter } from '../upstream/router.js';
import type { StorageBackend } from './backend.js';
import { Bandwidth } from './bandwidth.js';
import { Copier } from './copier.js';
import { FileBackend } from './file.js';
import { StorageMetrics } from './metrics.js';
import { StoredResults } from './results.js';
import { S3Backend } from './s3.js';
import { Sweeper } from './sweeper.js';
import type { StorageTarget } from './target.js';

export interface Storage {
  readonly results: StoredResults;
  readonly backend: StorageBackend;
  start(): void;
  /** Copies in flight are given back untried; then the backend's connections close. */
  stop(): Promise<void>;
}

export function openBackend(target: StorageTarget, config: StorageConfig): StorageBackend {
  if (target.kind === 'file') return new FileBackend(target.dir);
  return new S3Backend({ bucket: target.bucket, prefix: target.prefix, region: config.region, endpoint: config.s3Endpoint });
}

/** Stored results (§12) as STORAGE_URL configures them; undefined for `none`. */
export function openStorage(
  config: StorageConfig,
  deps: { store: Store; upstream: Pick<UpstreamRouter, 'content'>; clock: Clock; logger: Logger; metrics: Metrics },
): Storage | undefined {
  if (!config.target) return undefined;
  const { store, clock, logger } = deps;
  const backend = openBackend(config.target, config);
  const metrics = new StorageMetrics(deps.metrics.registry, store.copies, clock);
  const common = { ledger: store.copies, backend, clock, logger, metrics };
  const copier = new Copier(
    { ...common, upstream: deps.upstream, bandwidth: new Bandwidth(config.copyBytesPerSec) },
    { concurrency: config.copyConcurrency, retryMs: config.copyRetryMs, pollIntervalMs: config.pollIntervalMs },
  );
  const sweeper = new Sweeper(common, config.pollIntervalMs > 0, config.sweepIntervalMs);
  const results = new StoredResults(
    { store, backend, copier, sweeper, clock, logger, metrics },
    {
      retentionDays: config.retentionDays,
      redirect: config.contentRedirect === 'presigned',
      redirectTtlS: config.contentRedirectTtlS,
      dataUriMaxBytes: config.dataUriMaxBytes,
    },
  );
  return {
    results,
    backend,
    start() {
      copier.start();
      sweeper.start();
    },
    async stop() {
      await Promise.all([copier.stop(), sweeper.stop()]);
      backend.close();
    },
  };
}
