import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { TcpProxy } from './tcp-proxy.js';

/** Null when there is no PostgreSQL: the suites that need one skip (the global setup said why, loudly). */
export const postgresUrl: string | null = inject('postgresUrl');

const withDatabase = (url: string, name: string) => {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
};

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl!, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** An empty database of its own, so that test files running in parallel never see each other's rows. */
export async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  if (!postgresUrl) throw new Error('no PostgreSQL server for this run');
  const name = `gw_test_${randomBytes(6).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  return { url: withDatabase(postgresUrl, name), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/**
 * A fresh database reached through a TcpProxy that the test can cut to make the database disappear and come
 * back: `url` goes through the proxy, `directUrl` does not; `drop` closes the proxy as well.
 */
export async function freshDatabaseBehindProxy(): Promise<{ url: string; directUrl: string; proxy: TcpProxy; drop: () => Promise<void> }> {
  const db = await freshDatabase();
  const target = new URL(db.url);
  const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port) });
  const via = new URL(db.url);
  via.host = await proxy.listen();
  const drop = async () => {
    await proxy.close();
    await db.drop();
  };
  return { url: via.toString(), directUrl: db.url, proxy, drop };
}
