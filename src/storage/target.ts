import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where completed videos are copied (§12): a directory, or a bucket and a key prefix on an S3-compatible service. */
export type StorageTarget = { readonly kind: 'file'; readonly dir: string } | { readonly kind: 's3'; readonly bucket: string; readonly prefix: string };

/** The default directory under DATA_DIR: the embedded default needs nothing else. */
export const DEFAULT_STORAGE_SUBDIR = 'videos';

/**
 * STORAGE_URL: `none`, `file:///absolute/path`, or `s3://bucket/optional/prefix`; unset, the `videos` directory
 * under DATA_DIR. Throws a message fit for a configuration error.
 */
export function parseStorageUrl(raw: string | undefined, dataDir: string): StorageTarget | undefined {
  if (raw === undefined) return { kind: 'file', dir: resolve(dataDir, DEFAULT_STORAGE_SUBDIR) };
  if (raw === 'none') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('must be none, file:///path or s3://bucket/prefix');
  }
  if (url.protocol === 'file:') {
    if (url.host !== '') throw new Error('a file URL names a local directory: file:///path (three slashes)');
    return { kind: 'file', dir: fileURLToPath(url) };
  }
  if (url.protocol === 's3:') {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(url.hostname)) throw new Error('s3://bucket/prefix needs a valid bucket name');
    if (url.username || url.password || url.port || url.search) throw new Error('s3://bucket/prefix takes no credentials, port or query (credentials come from the AWS environment)');
    const prefix = decodeURIComponent(url.pathname).replace(/^\/+/, '').replace(/\/*$/, '');
    return { kind: 's3', bucket: url.hostname, prefix: prefix ? `${prefix}/` : '' };
  }
  throw new Error('must be none, file:///path or s3://bucket/prefix');
}
