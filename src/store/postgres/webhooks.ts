import type { AttemptResult, BudgetAlert, ClaimedDelivery, SecretRotation, WebhookDelivery, WebhookEndpoint, WebhookEndpointInput } from '../types.js';
import { classify, nowMs, PgPart, toDelivery, toEndpoint } from './part.js';
import { enqueueBudgetAlert } from './spend.js';

/** A team's webhook endpoint, and the outbox of deliveries (written by `PgJobs` with each terminal status). */
export class PgWebhooks extends PgPart {
  async putWebhook(teamId: string, input: WebhookEndpointInput, secret: string, nowArg: number): Promise<{ endpoint: WebhookEndpoint; created: boolean }> {
    // xmax is 0 on a row this statement inserted, and the updater's transaction id on one it updated.
    const [row] = await this.q(
      this.pool,
      `INSERT INTO webhook_endpoints AS e (team_id, url, events, enabled, secret, created_at)
       VALUES ($1, $2, $3::jsonb, $4, $5, ${nowMs(6)} / 1000)
       ON CONFLICT (team_id) DO UPDATE SET url = excluded.url, events = excluded.events, enabled = excluded.enabled
       RETURNING e.*, (xmax = 0) AS created`,
      [teamId, input.url, JSON.stringify(input.events), input.enabled, secret, this.at(nowArg)],
    );
    return { endpoint: toEndpoint(row!), created: row!.created as boolean };
  }

  async getWebhook(teamId: string): Promise<WebhookEndpoint | undefined> {
    const [row] = await this.q(this.pool, 'SELECT * FROM webhook_endpoints WHERE team_id = $1', [teamId]);
    return row ? toEndpoint(row) : undefined;
  }

  async deleteWebhook(teamId: string): Promise<boolean> {
    return (await this.q(this.pool, 'DELETE FROM webhook_endpoints WHERE team_id = $1 RETURNING team_id', [teamId])).length === 1;
  }

  async rotateWebhookSecret(teamId: string, secret: string, overlapMs: number, maxPrevious: number, nowArg: number): Promise<SecretRotation> {
    // Only the row's own columns: a rotation waiting on another's row lock re-reads them, and loses no secret.
    const signing = `(SELECT coalesce(jsonb_agg(p), '[]') FROM jsonb_array_elements(previous_secrets) p WHERE (p->>'expires_at_ms')::bigint > ${nowMs(5)})`;
    const [row] = await this.q(
      this.pool,
      `UPDATE webhook_endpoints
       SET previous_secrets = jsonb_build_array(jsonb_build_object('secret', secret, 'expires_at_ms', ${nowMs(5)} + $3)) || ${signing}, secret = $2
       WHERE team_id = $1 AND jsonb_array_length(${signing}) < $4 RETURNING *`,
      [teamId, secret, overlapMs, maxPrevious, this.at(nowArg)],
    );
    return row ? { ok: true, endpoint: toEndpoint(row) } : { ok: false, endpoint: await this.getWebhook(teamId) };
  }

  async recordAttempt(id: string, token: string, result: AttemptResult, nowArg: number): Promise<boolean> {
    const status = result.delivered ? 'delivered' : result.retryInMs === null ? 'failed' : 'pending';
    const rows = await this.q(
      this.pool,
      `UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $3, last_error = $4, last_latency_ms = $5,
         last_attempt_at_ms = ${nowMs(6)}, status = $7,
         next_attempt_at_ms = CASE WHEN $7 = 'pending' THEN ${nowMs(6)} + $8 END,
         delivered_at_ms = CASE WHEN $7 = 'delivered' THEN ${nowMs(6)} ELSE delivered_at_ms END,
         lease_until_ms = NULL, lease_token = NULL
       WHERE id = $1 AND lease_token = $2 RETURNING id`,
      [id, token, result.status, result.error, Math.round(result.latencyMs), this.at(nowArg), status, result.retryInMs ?? 0],
    );
    return rows.length === 1;
  }

  async listDeliveries(teamId: string, limit: number): Promise<WebhookDelivery[]> {
    return (await this.q(this.pool, 'SELECT * FROM webhook_deliveries WHERE team_id = $1 ORDER BY seq DESC LIMIT $2', [teamId, limit])).map(toDelivery);
  }

  async replayDelivery(teamId: string, id: string, nowArg: number): Promise<WebhookDelivery | undefined> {
    const [row] = await this.q(
      this.pool,
      `UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at_ms = ${nowMs(3)}, delivered_at_ms = NULL,
         lease_until_ms = NULL, lease_token = NULL WHERE id = $1 AND team_id = $2 RETURNING *`,
      [id, teamId, this.at(nowArg)],
    );
    return row ? toDelivery(row) : undefined;
  }

  async enqueueBudgetAlert(teamId: string, alert: BudgetAlert, nowArg: number): Promise<boolean> {
    try {
      return await enqueueBudgetAlert(this.pool, nowMs(6), teamId, alert, this.at(nowArg));
    } catch (err) {
      throw classify(err);
    }
  }
}
