import { Counter, Gauge, type Registry } from 'prom-client';
import type { Clock } from '../domain/quota-policy.js';
import type { CopyLedger, CopyStats } from '../store/copies.js';

export type CopyOutcome = 'stored' | 'retrying' | 'failed';
export type ContentSource = 'stored' | 'redirect' | 'upstream';

/** The gauges come from one store query, shared by scrapes this close together. */
const STATS_CACHE_MS = 5_000;

/** Stored results' metrics (§12), on the gateway's registry: copies and their failures, and what is stored. */
export class StorageMetrics {
  private readonly copies: Counter<'outcome'>;
  private readonly copied: Counter;
  private readonly removals: Counter;
  private readonly downloads: Counter<'source'>;
  private stats: { at: number; value: Promise<CopyStats | undefined> } | undefined;

  constructor(registry: Registry, ledger: CopyLedger, clock: Clock) {
    const registers = [registry];
    this.copies = new Counter({
      name: 'gateway_storage_copies_total',
      help: 'Copies of completed videos into storage, by outcome: stored, retrying (failed, tried again later) or failed (for good: the upstream no longer has the video).',
      labelNames: ['outcome'],
      registers,
    });
    this.copied = new Counter({ name: 'gateway_storage_copied_bytes_total', help: 'Bytes written to storage by successful copies.', registers });
    this.removals = new Counter({ name: 'gateway_storage_removals_total', help: 'Stored copies removed (expired, or their video deleted).', registers });
    this.downloads = new Counter({
      name: 'gateway_content_downloads_total',
      help: 'Content downloads by where the bytes came from: the stored copy, a redirect to it, or the upstream (not stored yet, or storage off).',
      labelNames: ['source'],
      registers,
    });
    const read = (): Promise<CopyStats | undefined> => {
      const now = clock.now();
      if (this.stats && now - this.stats.at < STATS_CACHE_MS) return this.stats.value;
      // A store that does not answer leaves the gauges out of this scrape rather than failing all of it.
      const value = ledger.stats().catch(() => undefined);
      this.stats = { at: now, value };
      return value;
    };
    const gauge = (name: string, help: string, pick: (s: CopyStats) => number) => {
      const g: Gauge = new Gauge({
        name,
        help,
        registers,
        collect: async () => {
          const s = await read();
          if (s) g.set(pick(s));
        },
      });
    };
    gauge('gateway_storage_stored_bytes', 'Bytes of the stored copies (all replicas: read from the store).', (s) => s.storedBytes);
    gauge('gateway_storage_stored_videos', 'Videos with a stored copy.', (s) => s.stored);
    gauge('gateway_storage_pending_copies', 'Completed videos waiting to be copied (new, or retrying after a failure).', (s) => s.pending);
    gauge('gateway_storage_failed_copies', 'Videos whose copy failed for good; their content streams from the upstream while it has them.', (s) => s.failed);
  }

  copy(outcome: CopyOutcome, bytes = 0): void {
    this.copies.labels(outcome).inc();
    if (bytes > 0) this.copied.inc(bytes);
  }

  removed(): void {
    this.removals.inc();
  }

  download(source: ContentSource): void {
    this.downloads.labels(source).inc();
  }
}
