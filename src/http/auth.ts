import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../domain/quota-policy.js';
import type { Principal, Store, StoreChange } from '../store/types.js';

/**
 * Keys are looked up by their SHA-256, so no comparison ever runs over the secret itself. The one-shot
 * `crypto.hash` is used because it runs on every request: a `createHash` object cost about 10 µs a poll.
 */
export const hashKey = (key: string) => hash('sha256', key, 'hex');

export const KEY_PREFIX = 'gvk_';
/** 32 random bytes: 256 bits, above the 192 the contract asks for. */
export function generateKey(): { key: string; prefix: string } {
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  return { key, prefix: key.slice(0, KEY_PREFIX.length + 8) };
}

export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(hash('sha256', a, 'buffer'), hash('sha256', b, 'buffer'));
}

export const STATIC_TEAM = 'default';

/**
 * Why /v1 refused a key, where the refusal can help without telling a guesser anything: the two
 * credentials an operator holds that are not team keys (neither is a secret to whoever sends it).
 */
export function refusedKeyMessage(key: string | undefined, adminToken: string | undefined, demoKey: string): string | undefined {
  if (!key) return undefined;
  if (key === demoKey) return `The demo key works only in demo mode (no upstream configured); this gateway has an upstream: use a team API key (POST /admin/teams/{team}/keys issues one).`;
  if (adminToken && safeEqual(key, adminToken)) return 'This is the admin token; /v1 takes a team API key (POST /admin/teams/{team}/keys issues one).';
  return undefined;
}

/**
 * Key → principal. Static keys (GATEWAY_API_KEYS, the simulator's demo key) belong to team `default` with
 * no limits; issued keys come from the store, cached briefly (KEY_CACHE_MS), and dropped from the cache as
 * soon as the store tells of a change to them (`changed`).
 */
export class Authenticator {
  private readonly cache: LRUCache<string, { principal: Principal; expiresAtMs: number }>;
  private readonly staticKeys = new Map<string, Principal>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    staticKeys: ReadonlyArray<{ key: string; id: string }>,
    cacheMs: number,
  ) {
    this.cache = new LRUCache({ max: 10_000, ttl: Math.max(1, cacheMs) });
    for (const { key, id } of staticKeys) {
      this.staticKeys.set(hashKey(key), { teamId: STATIC_TEAM, keyId: id, teamPolicy: {}, keyPolicy: {} });
    }
    store.onChange((change) => this.changed(change));
  }

  /**
   * The principal of a key known without asking the store: a static key, or an issued key cached and not
   * expired. Undefined otherwise, when `authenticate` must look further. Every request asks this first, so
   * that the usual answer costs no promise and no turn of the microtask queue.
   */
  known(key: string | undefined): Principal | undefined {
    return key ? this.lookup(hashKey(key)) : undefined;
  }

  async authenticate(key: string | undefined): Promise<Principal | undefined> {
    if (!key) return undefined;
    const digest = hashKey(key);
    const known = this.lookup(digest);
    if (known) return known;
    const found = await this.store.findKeyByHash(digest);
    if (!found) return undefined;
    const { key: record, team } = found;
    const nowS = this.clock.now() / 1000;
    if (record.revokedAt !== null || (record.expiresAt !== null && record.expiresAt <= nowS)) return undefined;
    const principal: Principal = { teamId: team.id, keyId: record.id, teamPolicy: team.quota, keyPolicy: record.quota };
    this.cache.set(digest, { principal, expiresAtMs: record.expiresAt !== null ? record.expiresAt * 1000 : Infinity });
    return principal;
  }

  private lookup(digest: string): Principal | undefined {
    const known = this.staticKeys.get(digest);
    if (known) return known;
    const cached = this.cache.get(digest);
    // Expiry is checked against the gateway's clock on every use, not left to the cache's own timer.
    return cached && cached.expiresAtMs > this.clock.now() ? cached.principal : undefined;
  }

  /**
   * Drops cached principals that a change in the store (made here, on another replica, or by the CLI on
   * the shared store) has made stale, so that a revocation or a policy change holds at once.
   */
  private changed(change: StoreChange): void {
    if (change.kind === 'reset') return this.cache.clear();
    if (change.kind === 'job') return;
    for (const [digest, { principal: p }] of this.cache.entries()) {
      if (change.kind === 'key' ? p.keyId === change.keyId : p.teamId === change.teamId) this.cache.delete(digest);
    }
  }
}
