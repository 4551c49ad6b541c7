import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { DestinationPolicy, isPublicAddress, parseAllowedHosts } from '../../src/webhooks/destination.js';
import { MAX_ATTEMPTS, RETRY_DELAYS_MS, retryDelay } from '../../src/webhooks/worker.js';

const resolveTo = (table: Record<string, string[]>) => async (name: string) => {
  const addresses = table[name];
  if (!addresses) throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
  return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};
const dns = resolveTo({ 'public.example': ['93.184.216.34'], 'hooks.acme.example': ['10.0.0.7'], 'a.internal.example': ['192.168.3.4'] });

describe('webhook destinations', () => {
  it.each([
    ['8.8.8.8', true],
    ['93.184.216.34', true],
    ['2606:4700::1111', true],
    ['10.1.2.3', false],
    ['172.16.0.1', false],
    ['172.31.255.255', false],
    ['172.32.0.1', true],
    ['192.168.0.1', false],
    ['100.64.0.1', false],
    ['127.0.0.1', false],
    ['127.255.255.254', false],
    ['169.254.169.254', false],
    ['0.0.0.0', false],
    ['224.0.0.1', false],
    ['255.255.255.255', false],
    ['::', false],
    ['::1', false],
    ['::ffff:127.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['::ffff:8.8.8.8', true],
    ['64:ff9b::a00:1', false],
    ['2002:a00:1::', false],
    ['fd00::1', false],
    ['fe80::1', false],
    ['ff02::1', false],
    ['not-an-address', false],
  ])('%s is public: %s', (address, expected) => {
    expect(isPublicAddress(address)).toBe(expected);
  });

  it.each([
    ['hooks.acme.example', { host: 'hooks.acme.example', subdomains: false, port: undefined }],
    ['*.internal.example:8443', { host: 'internal.example', subdomains: true, port: 8443 }],
    ['127.0.0.1:80', { host: '127.0.0.1', subdomains: false, port: 80 }],
    ['[::1]:9000', { host: '[::1]', subdomains: false, port: 9000 }],
    ['HOOKS.Example.com', { host: 'hooks.example.com', subdomains: false, port: undefined }],
  ])('parses the allow-list entry %s', (entry, expected) => {
    expect(parseAllowedHosts([entry])).toEqual([expected]);
  });

  it.each(['https://hooks.example.com', 'hooks.example.com/path', 'user@hooks.example.com', 'a b'])('refuses the allow-list entry %s', (entry) => {
    expect(() => parseAllowedHosts([entry])).toThrow(/host\[:port\]/);
    expect(() => loadConfig({ WEBHOOK_ALLOWED_HOSTS: `ok.example,${entry}` })).toThrow(ConfigError);
  });

  const open = new DestinationPolicy([], dns);
  const listed = new DestinationPolicy(parseAllowedHosts(['hooks.acme.example', '*.internal.example:8443', '127.0.0.1:9000']), dns);
  it.each<[string, DestinationPolicy, string, RegExp | null]>([
    ['open', open, 'https://public.example/in', null],
    ['open', open, 'https://public.example:8443/in', null],
    ['open', open, 'http://public.example/in', /must be https/],
    ['open', open, 'https://hooks.acme.example/in', /10\.0\.0\.7/],
    ['open', open, 'https://127.0.0.1:9000/in', /127\.0\.0\.1/],
    ['open', open, 'ftp://public.example/in', /must be https/],
    ['open', open, 'https://u:p@public.example/in', /credentials/],
    ['open', open, 'not a url', /not a valid absolute URL/],
    ['listed', listed, 'https://hooks.acme.example/in', null],
    ['listed', listed, 'http://hooks.acme.example:8080/in', null],
    ['listed', listed, 'https://a.internal.example:8443/in', null],
    ['listed', listed, 'https://a.internal.example/in', /not in WEBHOOK_ALLOWED_HOSTS/],
    ['listed', listed, 'https://internal.example:8443/in', /not in WEBHOOK_ALLOWED_HOSTS/],
    ['listed', listed, 'http://127.0.0.1:9000/in', null],
    ['listed', listed, 'http://127.0.0.1:9001/in', /not in WEBHOOK_ALLOWED_HOSTS/],
    ['listed', listed, 'https://public.example/in', /not in WEBHOOK_ALLOWED_HOSTS/],
  ])('%s policy: %s', async (_name, policy, url, refused) => {
    const checked = policy.check(url);
    if (refused) await expect(checked).rejects.toThrow(refused);
    else await expect(checked).resolves.toBeInstanceOf(URL);
  });

  it('hands a connection only the addresses the policy permits', async () => {
    const lookup = (policy: DestinationPolicy, name: string) =>
      new Promise<unknown>((resolve, reject) => policy.lookup(name, { all: true }, (err, all) => (err ? reject(err) : resolve(all))));
    await expect(lookup(open, 'public.example')).resolves.toEqual([{ address: '93.184.216.34', family: 4 }]);
    await expect(lookup(open, 'hooks.acme.example')).rejects.toThrow(/resolves to 10\.0\.0\.7/);
    await expect(lookup(listed, 'hooks.acme.example')).resolves.toEqual([{ address: '10.0.0.7', family: 4 }]);
    expect(() => open.checkBeforeSend(new URL('https://169.254.169.254/'))).toThrow(/169\.254\.169\.254/);
  });
});

describe('webhook retry schedule', () => {
  it('spreads twelve attempts over more than a day, jittered by at most 20 %', () => {
    expect(MAX_ATTEMPTS).toBe(12);
    const total = RETRY_DELAYS_MS.reduce((a, b) => a + b, 0);
    expect(total * 0.8).toBeGreaterThan(24 * 3_600_000);
    for (let attempts = 1; attempts < MAX_ATTEMPTS; attempts++) {
      const base = RETRY_DELAYS_MS[attempts - 1]!;
      expect(retryDelay(attempts, () => 0)).toBe(Math.round(base * 0.8));
      expect(retryDelay(attempts, () => 1)).toBe(Math.round(base * 1.2));
      if (attempts > 1) expect(base).toBeGreaterThan(RETRY_DELAYS_MS[attempts - 2]!);
    }
    expect(retryDelay(MAX_ATTEMPTS, () => 0.5)).toBeNull();
  });
});
