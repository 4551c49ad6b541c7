import { lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Where webhooks may go (WEBHOOK_ALLOWED_HOSTS, §6). Empty list: any host whose addresses are all public,
 * over https. A list: only the hosts on it (any port, or the one given), over https or http, and those may
 * resolve to private, loopback or link-local addresses — the operator named them. Addresses are checked
 * where the connection is made (DNS answers can change between the check at configuration and the send).
 */
export interface AllowedHost {
  readonly host: string;
  /** `*.example.com`: every subdomain of example.com, not example.com itself. */
  readonly subdomains: boolean;
  readonly port: number | undefined;
}

/** A destination the policy refuses, with the reason an operator can act on. */
export class RefusedDestinationError extends Error {
  override readonly name = 'RefusedDestinationError';
  readonly code = 'EWEBHOOKREFUSED';
}

/** Parses `host[:port]` entries; throws on one that is not. */
export function parseAllowedHosts(entries: readonly string[]): AllowedHost[] {
  return entries.map((entry) => {
    const subdomains = entry.startsWith('*.');
    const rest = subdomains ? entry.slice(2) : entry;
    let u: URL;
    try {
      u = new URL(`http://${rest}`);
    } catch {
      throw new Error(`'${entry}' is not host[:port]`);
    }
    if (u.username || u.password || u.pathname !== '/' || u.search || u.hash || !u.hostname) throw new Error(`'${entry}' is not host[:port]`);
    // URL drops a port equal to http's default; an explicit ':80' still means port 80.
    const port = u.port ? Number(u.port) : /:80$/.test(rest) ? 80 : undefined;
    return { host: u.hostname, subdomains, port };
  });
}

/** Addresses a webhook may not reach unless its host is listed: private, loopback, link-local, and the like. */
const REFUSED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
  ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) REFUSED.addSubnet(net, prefix, 'ipv4');
// NAT64 and 6to4 addresses are refused whole: each can carry a private IPv4 address inside. (IPv4-mapped ones
// BlockList checks against the IPv4 rules itself.)
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['100::', 64], ['2001:db8::', 32], ['2002::', 16],
  ['fc00::', 7], ['fe80::', 10], ['ff00::', 8],
] as const) REFUSED.addSubnet(net, prefix, 'ipv6');

export const isPublicAddress = (address: string): boolean => {
  const family = isIP(address);
  return family !== 0 && !REFUSED.check(address, family === 4 ? 'ipv4' : 'ipv6');
};

/** DNS: every address a name resolves to. */
export type ResolveHost = (hostname: string) => Promise<Array<{ address: string; family: number }>>;
const systemResolve: ResolveHost = (hostname) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));

const bare = (hostname: string) => hostname.replace(/^\[(.*)\]$/, '$1');
const effectivePort = (u: URL) => (u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80);

export class DestinationPolicy {
  constructor(
    readonly allowed: readonly AllowedHost[],
    /** DNS, replaceable so that tests can make a name resolve anywhere. */
    private readonly resolve: ResolveHost = systemResolve,
  ) {}

  private hostListed(hostname: string): boolean {
    const h = hostname.toLowerCase();
    return this.allowed.some((a) => (a.subdomains ? h.endsWith(`.${a.host}`) : h === a.host));
  }

  private listed(u: URL): boolean {
    const h = u.hostname.toLowerCase();
    const port = effectivePort(u);
    return this.allowed.some((a) => (a.subdomains ? h.endsWith(`.${a.host}`) : h === a.host) && (a.port === undefined || a.port === port));
  }

  /** Scheme, list and port: the rules a URL must meet whatever it resolves to. Returns whether it is listed. */
  private checkRules(u: URL): boolean {
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new RefusedDestinationError('the url must be https');
    if (u.username || u.password) throw new RefusedDestinationError('the url must not carry credentials (receivers verify the signature)');
    const listed = this.listed(u);
    if (this.allowed.length > 0 && !listed) throw new RefusedDestinationError(`${u.host} is not in WEBHOOK_ALLOWED_HOSTS`);
    if (u.protocol === 'http:' && !listed) throw new RefusedDestinationError('the url must be https (http only for hosts listed in WEBHOOK_ALLOWED_HOSTS)');
    return listed;
  }

  private refuseAddress(host: string, address: string): RefusedDestinationError {
    return new RefusedDestinationError(`${host} resolves to ${address}, a private, loopback or link-local address, refused unless listed in WEBHOOK_ALLOWED_HOSTS`);
  }

  /** The operator's check when an endpoint is set: the rules, then what the host resolves to now. */
  async check(raw: string): Promise<URL> {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new RefusedDestinationError('the url is not a valid absolute URL');
    }
    if (this.checkRules(u)) return u;
    const host = bare(u.hostname);
    let addresses: string[];
    try {
      addresses = isIP(host) ? [host] : (await this.resolve(host)).map((a) => a.address);
    } catch {
      throw new RefusedDestinationError(`${host} does not resolve`);
    }
    const refused = addresses.find((a) => !isPublicAddress(a));
    if (refused !== undefined) throw this.refuseAddress(host, refused);
    return u;
  }

  /**
   * Before each send: the rules again (the list may have changed since the endpoint was set) and an address
   * literal's address; a hostname's addresses are checked by `lookup`, on the connection itself.
   */
  checkBeforeSend(u: URL): void {
    if (this.checkRules(u)) return;
    const host = bare(u.hostname);
    if (isIP(host) && !isPublicAddress(host)) throw this.refuseAddress(host, host);
  }

  /**
   * The DNS lookup of every webhook connection: it hands the socket only addresses the policy permits, so a
   * name that resolves elsewhere at send time than when it was checked (DNS rebinding) connects nowhere.
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.resolve(hostname).then(
      (addresses) => {
        const refused = this.hostListed(hostname) ? undefined : addresses.find((a) => !isPublicAddress(a.address));
        if (refused) return callback(this.refuseAddress(hostname, refused.address), '', 0);
        if (addresses.length === 0) return callback(Object.assign(new Error(`${hostname} does not resolve`), { code: 'ENOTFOUND' }), '', 0);
        if (options.all) return (callback as unknown as (err: null, all: typeof addresses) => void)(null, addresses);
        const wanted = options.family === 6 || options.family === 4 ? addresses.find((a) => a.family === options.family) : addresses[0];
        if (!wanted) return callback(Object.assign(new Error(`${hostname} has no IPv${options.family} address`), { code: 'ENOTFOUND' }), '', 0);
        callback(null, wanted.address, wanted.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}
