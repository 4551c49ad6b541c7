import { UpstreamTransport, type TransportOptions } from '../client.js';
import { NewApiProvider } from './newapi.js';
import { DEFAULT_MEDIA_HOSTS, XaiProvider } from './xai.js';
import type { UpstreamKind } from '../../domain/upstream-kinds.js';
import type { Provider } from './types.js';

export interface ProviderSettings {
  readonly baseUrl: string;
  readonly keys: readonly string[];
  readonly timeouts: Pick<TransportOptions, 'connectTimeoutMs' | 'timeoutMs' | 'idleTimeoutMs'>;
  /** The upstream's call metrics. */
  readonly calls: TransportOptions['calls'];
  /** `host[:port]` the content may be fetched from, for kinds whose videos live on a media host (xai). */
  readonly mediaHosts?: readonly string[] | undefined;
}

/** One entry per kind: the only place that turns a kind's name into its provider. */
const FACTORIES: Readonly<Record<UpstreamKind, (s: ProviderSettings) => Provider>> = {
  newapi: (s) => new NewApiProvider(new UpstreamTransport({ baseUrl: s.baseUrl, secrets: s.keys, calls: s.calls, ...s.timeouts }), s.keys),
  xai: (s) => new XaiProvider(new UpstreamTransport({ baseUrl: s.baseUrl, secrets: s.keys, calls: s.calls, ...s.timeouts }), { secrets: s.keys, calls: s.calls, ...s.timeouts }, s.mediaHosts ?? DEFAULT_MEDIA_HOSTS),
};

export const makeProvider = (kind: UpstreamKind, settings: ProviderSettings): Provider => FACTORIES[kind](settings);
