import { buckets, type QuotaPolicy } from '../../domain/quota-policy.js';
import { microsToUsd } from '../../domain/money.js';
import { toModelUsage, usageByModelSql } from '../spend.js';
import type { ApiKeyRecord, CreateTeamResult, ModelUsage, PeriodUsage, Team, TeamUsage } from '../types.js';
import { nowMs, PgPart, scopeKey, toKey, toTeam } from './part.js';

/** Teams and their keys, and a team's usage. */
export class PgTeams extends PgPart {
  async createTeam(team: { id: string; name: string | null; quota: QuotaPolicy }, nowArg: number): Promise<CreateTeamResult> {
    const [row] = await this.q(
      this.pool,
      `INSERT INTO teams (id, name, quota, created_at) VALUES ($1, $2, $3::jsonb, ${nowMs(4)} / 1000) ON CONFLICT (id) DO NOTHING RETURNING *`,
      [team.id, team.name, JSON.stringify(team.quota), this.at(nowArg)],
    );
    if (row) return { ok: true, team: toTeam(row) };
    // Team rows are never removed (a delete tombstones them), so the row that refused this insert is still there.
    const [existing] = await this.q(this.pool, 'SELECT deleted_at FROM teams WHERE id = $1', [team.id]);
    return { ok: false, reason: existing?.deleted_at == null ? 'exists' : 'deleted' };
  }

  async getTeam(id: string): Promise<Team | undefined> {
    const [row] = await this.q(this.pool, 'SELECT * FROM teams WHERE id = $1 AND deleted_at IS NULL', [id]);
    return row ? toTeam(row) : undefined;
  }

  async listTeams(): Promise<Team[]> {
    return (await this.q(this.pool, 'SELECT * FROM teams WHERE deleted_at IS NULL ORDER BY created_at, id')).map(toTeam);
  }

  updateTeam(id: string, patch: { name?: string | null; quota?: QuotaPolicy }): Promise<Team | undefined> {
    return this.tx(async (c, _moves, told) => {
      const [row] = await this.q(
        c,
        `UPDATE teams SET name = CASE WHEN $2::boolean THEN $3 ELSE name END, quota = coalesce($4::jsonb, quota)
         WHERE id = $1 AND deleted_at IS NULL RETURNING *`,
        [id, patch.name !== undefined, patch.name ?? null, patch.quota ? JSON.stringify(patch.quota) : null],
      );
      if (!row) return undefined;
      await this.notify(c, told, { kind: 'team', teamId: id });
      return toTeam(row);
    });
  }

  deleteTeam(id: string, nowArg: number): Promise<boolean> {
    return this.tx(async (c, _moves, told) => {
      await this.q(c, `UPDATE api_keys SET revoked_at = ${nowMs(2)} / 1000 WHERE team_id = $1 AND revoked_at IS NULL`, [id, this.at(nowArg)]);
      const tombstoned = await this.q(c, `UPDATE teams SET deleted_at = ${nowMs(2)} / 1000 WHERE id = $1 AND deleted_at IS NULL RETURNING id`, [
        id,
        this.at(nowArg),
      ]);
      if (tombstoned.length !== 1) return false;
      await this.q(c, 'DELETE FROM webhook_endpoints WHERE team_id = $1', [id]);
      await this.notify(c, told, { kind: 'team', teamId: id });
      return true;
    });
  }

  async createKey(key: Omit<ApiKeyRecord, 'revokedAt'> & { hash: string }): Promise<ApiKeyRecord> {
    const [row] = await this.q(
      this.pool,
      `INSERT INTO api_keys (id, team_id, name, prefix, hash, quota, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8) RETURNING *`,
      [key.id, key.teamId, key.name, key.prefix, key.hash, JSON.stringify(key.quota), key.createdAt, key.expiresAt],
    );
    return toKey(row!);
  }

  async listKeys(teamId: string): Promise<ApiKeyRecord[]> {
    return (await this.q(this.pool, 'SELECT * FROM api_keys WHERE team_id = $1 ORDER BY created_at, id', [teamId])).map(toKey);
  }

  revokeKey(id: string, nowArg: number): Promise<ApiKeyRecord | undefined> {
    return this.tx(async (c, _moves, told) => {
      const [row] = await this.q(c, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, ${nowMs(2)} / 1000) WHERE id = $1 RETURNING *`, [
        id,
        this.at(nowArg),
      ]);
      if (!row) return undefined;
      await this.notify(c, told, { kind: 'key', keyId: id });
      return toKey(row);
    });
  }

  async findKeyByHash(hash: string): Promise<{ key: ApiKeyRecord; team: Team } | undefined> {
    const [row] = await this.q(
      this.pool,
      `SELECT k.*, t.id AS t_id, t.name AS t_name, t.quota AS t_quota, t.created_at AS t_created_at
       FROM api_keys k JOIN teams t ON t.id = k.team_id AND t.deleted_at IS NULL WHERE k.hash = $1`,
      [hash],
    );
    if (!row) return undefined;
    return { key: toKey(row), team: toTeam({ id: row.t_id, name: row.t_name, quota: row.t_quota, created_at: row.t_created_at }) };
  }

  async usage(teamId: string, nowArg: number, days: number): Promise<TeamUsage> {
    const [clock] = await this.q(this.pool, `SELECT ${nowMs(1)} AS now_ms`, [this.at(nowArg)]);
    const now = clock!.now_ms as number;
    const b = buckets(now);
    const sk = scopeKey('team', teamId);
    const since = new Date(now - (days - 1) * 86_400_000).toISOString().slice(0, 10);
    const [rows, [active]] = await Promise.all([
      this.q(
        this.pool,
        `SELECT bucket, requests, seconds_reserved, seconds_settled, usd_reserved_micros, usd_settled_micros FROM counters
         WHERE scope = $1 AND (bucket IN ($2, $3) OR (bucket >= $4 AND bucket LIKE 'day:%'))`,
        [sk, `min:${b.minute}`, `month:${b.month}`, `day:${since}`],
      ),
      this.q(this.pool, "SELECT count(*) AS n FROM jobs WHERE team_id = $1 AND charge = 'reserved'", [teamId]),
      this.q(this.pool, "DELETE FROM counters WHERE bucket LIKE 'min:%' AND bucket < $1", [`min:${new Date(now - 3_600_000).toISOString().slice(0, 16)}`]),
    ]);
    type Amounts = { requests: number; seconds_reserved: number; seconds_settled: number; usd_reserved_micros: number; usd_settled_micros: number };
    const byBucket = new Map(rows.map((r) => [r.bucket as string, r as Amounts]));
    const period = (start: string, bucket: string): PeriodUsage => {
      const c = byBucket.get(bucket);
      return {
        start,
        video_seconds: c ? c.seconds_reserved + c.seconds_settled : 0,
        video_seconds_reserved: c?.seconds_reserved ?? 0,
        usd: c ? microsToUsd(c.usd_reserved_micros + c.usd_settled_micros) : 0,
        usd_reserved: microsToUsd(c?.usd_reserved_micros ?? 0),
        requests: c?.requests ?? 0,
      };
    };
    const daily = [];
    for (let i = days - 1; i >= 0; i--) {
      const date = new Date(now - i * 86_400_000).toISOString().slice(0, 10);
      const r = byBucket.get(`day:${date}`);
      daily.push({
        date,
        video_seconds: r ? r.seconds_reserved + r.seconds_settled : 0,
        usd: r ? microsToUsd(r.usd_reserved_micros + r.usd_settled_micros) : 0,
        requests: r?.requests ?? 0,
      });
    }
    return {
      day: period(b.day, `day:${b.day}`),
      month: period(b.month, `month:${b.month}`),
      activeJobs: active!.n as number,
      requestsThisMinute: byBucket.get(`min:${b.minute}`)?.requests ?? 0,
      daily,
    };
  }

  async usageByModel(teamId: string, nowArg: number): Promise<ModelUsage[]> {
    const [clock] = await this.q(this.pool, `SELECT ${nowMs(1)} AS now_ms`, [this.at(nowArg)]);
    const b = buckets(clock!.now_ms as number);
    return toModelUsage(await this.q(this.pool, usageByModelSql({ teamId: '$1', day: '$2', month: '$3' }), [teamId, b.day, b.month]));
  }
}
