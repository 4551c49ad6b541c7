import { toStoredSecrets, type Row } from '../rows.js';
import { StoreUnavailableError, type ImportSummary, type StoreRecord } from '../types.js';
import { PgPart } from './part.js';

/**
 * How each kind of exported record lands in its table: the columns written, and the record as a JSON object
 * keyed by column name, which `jsonb_populate_recordset` turns into rows of the table's own types.
 */
const IMPORTS: { readonly [K in StoreRecord['kind']]: { table: string; columns: string; row: (r: Extract<StoreRecord, { kind: K }>) => Row } } = {
  team: {
    table: 'teams',
    columns: 'id, name, quota, created_at, deleted_at',
    row: ({ team: t, deletedAt }) => ({ id: t.id, name: t.name, quota: t.quota, created_at: t.createdAt, deleted_at: deletedAt }),
  },
  key: {
    table: 'api_keys',
    columns: 'id, team_id, name, prefix, hash, quota, created_at, expires_at, revoked_at',
    row: ({ key: k, hash }) => ({
      id: k.id, team_id: k.teamId, name: k.name, prefix: k.prefix, hash, quota: k.quota,
      created_at: k.createdAt, expires_at: k.expiresAt, revoked_at: k.revokedAt,
    }),
  },
  job: {
    table: 'jobs',
    columns:
      'id, team_id, key_id, upstream_id, upstream_key_fp, upstream_name, media_url, source_video_id, derivation, model, prompt, seconds, resolution, aspect_ratio, ' +
      'status, progress, error, created_at, completed_at, updated_at_ms, charge, charge_day, charge_month, deleted_at, ' +
      'expires_at, storage_state, storage_bytes, storage_type, storage_attempts, storage_next_at_ms, storage_error, ' +
      'cost_estimate_micros, cost_price_micros, cost_micros, cost_source',
    row: ({ job: j, deletedAt }) => ({
      id: j.id, team_id: j.teamId, key_id: j.keyId, upstream_id: j.upstreamId, upstream_key_fp: j.upstreamKeyFp,
      upstream_name: j.upstreamName, media_url: j.mediaUrl, source_video_id: j.sourceVideoId, derivation: j.derivation, model: j.model,
      prompt: j.prompt, seconds: j.seconds, resolution: j.resolution, aspect_ratio: j.aspectRatio, status: j.status,
      progress: j.progress, error: j.error, created_at: j.createdAt, completed_at: j.completedAt, updated_at_ms: j.updatedAtMs,
      charge: j.charge, charge_day: j.chargeDay, charge_month: j.chargeMonth, deleted_at: deletedAt,
      // The copy's state and retention travel with the job; a claim on it does not (no worker here holds one).
      expires_at: j.expiresAt, storage_state: j.storage?.state ?? null, storage_bytes: j.storage?.bytes ?? null,
      storage_type: j.storage?.contentType ?? null, storage_attempts: j.storage?.attempts ?? 0,
      storage_next_at_ms: j.storage?.nextAttemptAtMs ?? null, storage_error: j.storage?.error ?? null,
      cost_estimate_micros: j.estimateMicros, cost_price_micros: j.priceMicros, cost_micros: j.costMicros, cost_source: j.costSource,
    }),
  },
  counter: {
    table: 'counters',
    columns: 'scope, bucket, requests, seconds_reserved, seconds_settled, usd_reserved_micros, usd_settled_micros',
    row: ({ counter: c }) => ({
      scope: c.scope, bucket: c.bucket, requests: c.requests, seconds_reserved: c.secondsReserved, seconds_settled: c.secondsSettled,
      usd_reserved_micros: c.usdReservedMicros, usd_settled_micros: c.usdSettledMicros,
    }),
  },
  webhook_endpoint: {
    table: 'webhook_endpoints',
    columns: 'team_id, url, events, enabled, secret, previous_secrets, created_at',
    row: ({ endpoint: e }) => ({
      team_id: e.teamId, url: e.url, events: e.events, enabled: e.enabled, secret: e.secret, previous_secrets: toStoredSecrets(e.previousSecrets),
      created_at: e.createdAt,
    }),
  },
  // lease_until_ms and lease_token are left out, so null: no worker holds a claim on a row just copied.
  webhook_delivery: {
    table: 'webhook_deliveries',
    columns:
      'id, event_id, team_id, video_id, type, created_at, status, attempts, last_status, last_error, last_latency_ms, ' +
      'last_attempt_at_ms, next_attempt_at_ms, delivered_at_ms, data',
    row: ({ delivery: d }) => ({
      id: d.id, event_id: d.eventId, team_id: d.teamId, video_id: d.videoId, type: d.type, created_at: d.createdAt, status: d.status,
      attempts: d.attempts, last_status: d.lastStatus, last_error: d.lastError, last_latency_ms: d.lastLatencyMs,
      last_attempt_at_ms: d.lastAttemptAtMs, next_attempt_at_ms: d.nextAttemptAtMs, delivered_at_ms: d.deliveredAtMs, data: d.data,
    }),
  },
};
const IMPORT_BATCH = 500;

/** Copying another store's records in (`migrate-sqlite`). */
export class PgImport extends PgPart {
  /**
   * Adds another store's records (see `SqliteStore.exportAll`) in one transaction: all or nothing. A record
   * whose id (or key hash, counter bucket, team's webhook endpoint, or delivery's event or video) is already
   * here is left as it is and counted as existing, so importing the same export twice adds nothing the second
   * time. Jobs and webhook deliveries keep their order (new `seq` values in export order), so lists page as
   * before.
   */
  async importAll(records: AsyncIterable<StoreRecord>): Promise<ImportSummary> {
    const summary = Object.fromEntries(Object.keys(IMPORTS).map((kind) => [kind, { copied: 0, existing: 0 }])) as ImportSummary;
    const c = await this.connect();
    let batch: StoreRecord[] = [];
    const flush = async () => {
      const kind = batch[0]?.kind;
      if (!kind) return;
      const { table, columns, row } = IMPORTS[kind];
      const added = await this.q(
        c,
        `INSERT INTO ${table} (${columns}) SELECT ${columns} FROM jsonb_populate_recordset(NULL::${table}, $1::jsonb) WITH ORDINALITY AS x
         ORDER BY x.ordinality ON CONFLICT DO NOTHING RETURNING 1`,
        [JSON.stringify(batch.map((r) => (row as (r: StoreRecord) => Row)(r)))],
      );
      summary[kind].copied += added.length;
      summary[kind].existing += batch.length - added.length;
      batch = [];
    };
    try {
      await this.q(c, 'BEGIN');
      for await (const r of records) {
        if (batch.length >= IMPORT_BATCH || (batch.length > 0 && batch[0]!.kind !== r.kind)) await flush();
        batch.push(r);
      }
      await flush();
      await this.q(c, 'COMMIT');
      c.release();
      return summary;
    } catch (err) {
      if (err instanceof StoreUnavailableError) c.release(true);
      else await c.query('ROLLBACK').then(() => c.release(), () => c.release(true));
      throw err;
    }
  }
}
