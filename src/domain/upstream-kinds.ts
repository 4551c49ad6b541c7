/**
 * The upstream protocols ("kinds") the gateway speaks: new-api resellers and xAI's own API. Each has a
 * provider (src/upstream/providers), and the model table says which kinds know a model and what each allows.
 */
export const UPSTREAM_KINDS = ['newapi', 'xai'] as const;
export type UpstreamKind = (typeof UPSTREAM_KINDS)[number];

/** The id of the upstream that UPSTREAM_BASE_URL and UPSTREAM_API_KEY describe. */
export const DEFAULT_UPSTREAM_ID = 'default';
