import type pg from 'pg';
import { isTerminal, type JobRecord } from '../../domain/job.js';
import { eventTypeFor, newDeliveryId, newEventId } from '../../domain/webhook-event.js';
import { ABANDONED, heldOnDelete, isAbandoned, isDeletedPending } from '../lifecycle.js';
import type { ListOptions, ReservationOnDelete, TaskUpdate } from '../types.js';
import { NO_COST, settledCost, type FinalCost } from '../spend.js';
import { nowMs, PgPart, toJob, type ChargeMove } from './part.js';

/** Jobs: their lifecycle (activation, updates with their settlement and webhook event, deletion), and reads (the tracker's claims are in queues.ts). */
export class PgJobs extends PgPart {
  /**
   * Writes a status under the job's row lock; a terminal one settles or refunds. Concurrent updates of one
   * job queue on that lock and the later ones find the job already terminal, so the reservation moves once.
   */
  private async apply(c: pg.PoolClient, moves: ChargeMove[], job: JobRecord, task: TaskUpdate, nowArg: number): Promise<JobRecord> {
    const terminal = isTerminal(task.status);
    const charge = terminal && job.charge === 'reserved' ? (task.status === 'completed' ? 'settled' : 'refunded') : job.charge;
    const cost: FinalCost | undefined = charge === job.charge ? undefined : charge === 'settled' ? settledCost(job, task.costMicros) : NO_COST;
    const [row] = await this.q(
      c,
      `UPDATE jobs SET status = $2, progress = $3, error = $4::jsonb, completed_at = CASE WHEN $5::boolean THEN ${nowMs(6)} / 1000 END,
         updated_at_ms = ${nowMs(6)}, charge = $7, media_url = COALESCE($8, media_url),
         cost_micros = CASE WHEN $9::boolean THEN $10 ELSE cost_micros END, cost_source = CASE WHEN $9::boolean THEN $11 ELSE cost_source END
       WHERE id = $1 RETURNING *`,
      [
        job.id, task.status, task.progress, task.error ? JSON.stringify(task.error) : null, terminal, this.at(nowArg), charge, task.mediaUrl ?? null,
        cost !== undefined, cost?.costMicros ?? null, cost?.costSource ?? null,
      ],
    );
    if (cost) await this.shift(c, moves, job, -job.seconds, charge === 'settled' ? job.seconds : 0, cost);
    const type = eventTypeFor(task.status);
    // In the transaction that makes the job terminal, once per job (callers hold its row lock and skip terminal
    // jobs; the unique video id backs that up). Not for a video its team deleted: it can no longer see it.
    if (type && row!.deleted_at === null) {
      await this.q(
        c,
        `INSERT INTO webhook_deliveries (id, event_id, team_id, video_id, type, created_at, status, next_attempt_at_ms)
         SELECT $1, $2, team_id, $3, $4, ${nowMs(6)} / 1000, 'pending', ${nowMs(6)} FROM webhook_endpoints
         WHERE team_id = $5 AND enabled AND events ? $4
         ON CONFLICT (video_id) DO NOTHING`,
        [newDeliveryId(), newEventId(), job.id, type, job.teamId, this.at(nowArg)],
      );
    }
    return toJob(row!);
  }

  private async lockJob(c: pg.PoolClient, id: string): Promise<JobRecord | undefined> {
    const [row] = await this.q(c, 'SELECT * FROM jobs WHERE id = $1 FOR UPDATE', [id]);
    return row ? toJob(row) : undefined;
  }

  activateJob(id: string, upstreamId: string, keyFp: string, task: TaskUpdate, nowArg: number, upstreamName: string, priceMicros: number | null = null): Promise<JobRecord> {
    return this.tx(async (c, moves) => {
      const locked = await this.lockJob(c, id);
      if (!locked) throw new Error(`job ${id} is not in the store`);
      const job = { ...locked, priceMicros };
      const revive = isAbandoned(job);
      let charge = job.charge;
      let cost: FinalCost | null = revive ? { costMicros: null, costSource: null } : null;
      if (revive) {
        // The upstream has the job after all: the team gets it and is charged for it, past a limit if need be,
        // in the buckets it was first admitted to.
        charge = 'reserved';
        await this.shift(c, moves, job, job.seconds, 0);
      } else if (isDeletedPending(job)) {
        // The team deleted it before the upstream answered; the upstream runs and bills it all the same, so it
        // is charged as a finished job would be, and stays deleted.
        charge = 'settled';
        cost = settledCost(job, undefined);
        await this.shift(c, moves, job, 0, job.seconds, cost);
      }
      await this.q(
        c,
        `UPDATE jobs SET upstream_id = $2, upstream_key_fp = $3, upstream_name = $5, cost_price_micros = $6,
           deleted_at = CASE WHEN $4::boolean THEN NULL ELSE deleted_at END,
           cost_micros = CASE WHEN $7::boolean THEN $8 ELSE cost_micros END, cost_source = CASE WHEN $7::boolean THEN $9 ELSE cost_source END
         WHERE id = $1`,
        [id, upstreamId, keyFp, revive, upstreamName, priceMicros, cost !== null, cost?.costMicros ?? null, cost?.costSource ?? null],
      );
      // As in the embedded store: activation starts the job over as queued, then records the upstream's status.
      return this.apply(c, moves, { ...job, upstreamName, status: 'queued', charge, ...(cost ?? {}) }, task, nowArg);
    });
  }

  async abandonJob(id: string, nowArg: number): Promise<void> {
    await this.tx(async (c, moves, told) => {
      const job = await this.lockJob(c, id);
      // Activated meanwhile (the tracker read its worklist before the upstream answered): not abandoned.
      if (!job || job.upstreamId !== null || job.charge !== 'reserved') return;
      await this.q(
        c,
        `UPDATE jobs SET charge = 'refunded', status = 'failed', error = $2::jsonb, deleted_at = ${nowMs(3)}, updated_at_ms = ${nowMs(3)},
           cost_micros = 0, cost_source = NULL WHERE id = $1`,
        [id, JSON.stringify(ABANDONED), this.at(nowArg)],
      );
      await this.shift(c, moves, job, -job.seconds, 0);
      await this.notify(c, told, { kind: 'job', jobId: id, deleted: false });
    });
  }

  updateJob(id: string, task: TaskUpdate, nowArg: number): Promise<JobRecord | undefined> {
    return this.tx(async (c, moves) => {
      const job = await this.lockJob(c, id);
      if (!job || isTerminal(job.status)) return job;
      return this.apply(c, moves, job, task, nowArg);
    });
  }

  async getJob(teamId: string, id: string): Promise<JobRecord | undefined> {
    const [row] = await this.q(this.pool, 'SELECT * FROM jobs WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL', [id, teamId]);
    return row ? toJob(row) : undefined;
  }

  async listJobs(teamId: string, opts: ListOptions): Promise<{ jobs: JobRecord[]; hasMore: boolean }> {
    let cursor = opts.order === 'desc' ? Number.MAX_SAFE_INTEGER : 0;
    if (opts.after) {
      const [row] = await this.q(this.pool, 'SELECT seq FROM jobs WHERE id = $1 AND team_id = $2', [opts.after, teamId]);
      if (!row) return { jobs: [], hasMore: false };
      cursor = row.seq as number;
    }
    const rows = await this.q(
      this.pool,
      opts.order === 'desc'
        ? 'SELECT * FROM jobs WHERE team_id = $1 AND deleted_at IS NULL AND seq < $2 ORDER BY seq DESC LIMIT $3'
        : 'SELECT * FROM jobs WHERE team_id = $1 AND deleted_at IS NULL AND seq > $2 ORDER BY seq ASC LIMIT $3',
      [teamId, cursor, opts.limit + 1],
    );
    return { jobs: rows.slice(0, opts.limit).map(toJob), hasMore: rows.length > opts.limit };
  }

  deleteJob(teamId: string, id: string, nowArg: number, held: ReservationOnDelete): Promise<boolean> {
    return this.tx(async (c, moves, told) => {
      const [row] = await this.q(c, 'SELECT * FROM jobs WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL FOR UPDATE', [id, teamId]);
      if (!row) return false;
      const job = toJob(row);
      const charge = job.charge !== 'reserved' ? job.charge : heldOnDelete(held, job) === 'settle' ? 'settled' : 'refunded';
      const cost = charge === job.charge ? undefined : charge === 'settled' ? settledCost(job, undefined) : NO_COST;
      await this.q(
        c,
        `UPDATE jobs SET deleted_at = ${nowMs(2)}, charge = $3,
           cost_micros = CASE WHEN $4::boolean THEN $5 ELSE cost_micros END, cost_source = CASE WHEN $4::boolean THEN $6 ELSE cost_source END
         WHERE id = $1`,
        [id, this.at(nowArg), charge, cost !== undefined, cost?.costMicros ?? null, cost?.costSource ?? null],
      );
      if (cost) await this.shift(c, moves, job, -job.seconds, charge === 'settled' ? job.seconds : 0, cost);
      await this.notify(c, told, { kind: 'job', jobId: id, deleted: true });
      return true;
    });
  }

  async activeJobs(limit: number): Promise<JobRecord[]> {
    return (await this.q(this.pool, "SELECT * FROM jobs WHERE charge = 'reserved' ORDER BY updated_at_ms ASC LIMIT $1", [limit])).map(toJob);
  }

  async activeJobsOfTeam(teamId: string, limit: number): Promise<JobRecord[]> {
    const rows = await this.q(this.pool, "SELECT * FROM jobs WHERE team_id = $1 AND charge = 'reserved' ORDER BY updated_at_ms ASC LIMIT $2", [teamId, limit]);
    return rows.map(toJob);
  }

  async activeJobStats(): Promise<Array<{ teamId: string; jobs: number }>> {
    const rows = await this.q(this.pool, `SELECT team_id AS "teamId", count(*) AS jobs FROM jobs WHERE charge = 'reserved' GROUP BY team_id`);
    return rows as Array<{ teamId: string; jobs: number }>;
  }
}
