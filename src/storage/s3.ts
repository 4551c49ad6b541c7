import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  NoSuchKey,
  NoSuchUpload,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { CopyMissingError, type ByteRange, type StorageBackend } from './backend.js';

export interface S3Options {
  readonly bucket: string;
  /** Ends in `/` unless empty. */
  readonly prefix: string;
  readonly region: string;
  /** A non-AWS service (MinIO, R2, moto): addressed path-style, as they all accept. */
  readonly endpoint?: string | undefined;
}

/** Multipart parts: S3's minimum is 5 MiB; a typical video is one to three parts. */
const PART_BYTES = 8 * 1024 * 1024;
/** Parts of one upload in flight at once (the copier bounds the number of uploads). */
const PARTS_IN_FLIGHT = 2;

/**
 * Any S3-compatible bucket (STORAGE_URL=s3://bucket/prefix). Credentials come from the standard AWS chain
 * (environment, shared files, instance roles), never from the gateway's own configuration. Uploads are
 * multipart (lib-storage), aborted whole on failure, so no object appears half-written. Checksums are sent
 * only where the service requires them: S3-compatible services differ in which they support.
 */
export class S3Backend implements StorageBackend {
  readonly kind = 's3';
  private readonly client: S3Client;

  constructor(private readonly opts: S3Options) {
    this.client = new S3Client({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  private key(key: string): string {
    return this.opts.prefix + key;
  }

  async put(key: string, body: Readable, contentType: string, signal: AbortSignal): Promise<void> {
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.opts.bucket, Key: this.key(key), Body: body, ContentType: contentType },
      partSize: PART_BYTES,
      queueSize: PARTS_IN_FLIGHT,
      leavePartsOnError: false,
    });
    const abort = () => void upload.abort().catch(() => undefined);
    signal.addEventListener('abort', abort, { once: true });
    try {
      await upload.done();
    } finally {
      signal.removeEventListener('abort', abort);
    }
  }

  async open(key: string, range: ByteRange | undefined): Promise<Readable> {
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.opts.bucket, Key: this.key(key), ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
      );
      return out.Body as Readable;
    } catch (err) {
      if (err instanceof NoSuchKey || (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404)) throw new CopyMissingError(`no object for ${key}`);
      throw err;
    }
  }

  async remove(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: this.key(key) }));
  }

  /**
   * Multipart uploads under the prefix begun before `beforeMs` and never completed: lib-storage aborts its
   * own on failure, but a process killed mid-upload leaves its parts, which the bucket keeps (and bills) until
   * aborted. Only the start of an upload is listed, so `beforeMs` must leave room for the longest copy.
   */
  async removeAbandoned(beforeMs: number): Promise<number> {
    const { bucket, prefix } = this.opts;
    let removed = 0;
    let marker: { KeyMarker?: string | undefined; UploadIdMarker?: string | undefined } = {};
    for (;;) {
      const page = await this.client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, ...marker }));
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated.getTime() >= beforeMs) continue;
        try {
          await this.client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }));
          removed++;
        } catch (err) {
          // Aborted meanwhile by another replica, or by the bucket's lifecycle rule.
          if (!(err instanceof NoSuchUpload)) throw err;
        }
      }
      if (!page.IsTruncated) return removed;
      marker = { KeyMarker: page.NextKeyMarker, UploadIdMarker: page.NextUploadIdMarker };
    }
  }

  presign(key: string, ttlS: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.opts.bucket, Key: this.key(key) }), { expiresIn: ttlS });
  }

  close(): void {
    this.client.destroy();
  }
}
