import pg from 'pg';

/** Backoff between reconnection attempts: doubling from the first, capped at the last, with jitter. */
const RECONNECT_FIRST_MS = 100;
const RECONNECT_MAX_MS = 5_000;
/**
 * How often the listening connection proves it is alive. A link that dies silently (no reset, no FIN)
 * delivers no notifications and no error; without this probe the replica would trust its caches for as
 * long as TCP keepalive takes to notice, which is minutes.
 */
export const LISTEN_HEARTBEAT_MS = 5_000;

export interface ListenOptions {
  readonly url: string;
  readonly channel: string;
  /** Connecting, and the heartbeat's answer, fail after this long. */
  readonly timeoutMs: number;
  readonly onNotification: (payload: string) => void;
  /**
   * Notifications may have been missed: the connection was lost, or has just been (re)established and
   * anything committed before its LISTEN took effect was not heard.
   */
  readonly onGap: () => void;
}

/**
 * One dedicated connection (not from the pool: a pooled one is handed to other work and its LISTEN lost)
 * doing LISTEN on one channel, reconnecting with backoff whenever it drops.
 */
export class PgListener {
  private client: pg.Client | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private closed = false;

  constructor(private readonly opts: ListenOptions) {}

  start(): void {
    void this.connect();
  }

  private async connect(): Promise<void> {
    const { url, channel, timeoutMs, onNotification, onGap } = this.opts;
    const client = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
      keepAlive: true,
      application_name: 'grok-video-gateway (listen)',
    });
    let heartbeat: NodeJS.Timeout | undefined;
    let done = false;
    // Every way this connection can end (refused, reset, heartbeat unanswered, closed) comes here, once.
    const lost = () => {
      if (done) return;
      done = true;
      clearInterval(heartbeat);
      client.end().catch(() => undefined);
      if (this.client === client) {
        this.client = undefined;
        onGap();
      }
      this.retry();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (n) => {
      if (n.channel === channel && n.payload !== undefined) onNotification(n.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${channel}`);
    } catch {
      lost();
      return;
    }
    if (done) return;
    if (this.closed) {
      done = true;
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.attempt = 0;
    heartbeat = setInterval(() => void client.query('SELECT 1').catch(lost), LISTEN_HEARTBEAT_MS);
    heartbeat.unref();
    onGap();
  }

  private retry(): void {
    if (this.closed) return;
    const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** this.attempt++);
    this.retryTimer = setTimeout(() => void this.connect(), ceiling / 2 + Math.random() * (ceiling / 2));
    this.retryTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
