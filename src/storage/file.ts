import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CopyMissingError, type ByteRange, type StorageBackend } from './backend.js';

/**
 * Bytes read from disk per chunk: each chunk costs one read, one socket write and a trip through the stream,
 * so fewer, larger ones cost less CPU per MiB (measured in docs/benchmarks.md: 4 MiB is where the gain stops).
 * A download holds at most two (one read ahead, one being sent).
 */
const READ_CHUNK_BYTES = 4 * 1024 * 1024;
/** Files being written end in this; a crash leaves them behind (removeAbandoned), and nothing ever serves them. */
export const PARTIAL_SUFFIX = '.part';

/** A directory's entries; none when it does not exist (yet, or no longer). */
async function entries(dir: string) {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * A directory (STORAGE_URL=file:///path). A video is written to a temporary file beside its place, flushed
 * to disk, then renamed into place, so a reader sees all of it or nothing. Reads are file streams piped
 * straight to the client socket: one read into a buffer and one write of it, the fewest copies Node allows.
 */
export class FileBackend implements StorageBackend {
  readonly kind = 'file';

  constructor(private readonly root: string) {}

  private path(key: string): string {
    return join(this.root, key);
  }

  async put(key: string, body: Readable, _contentType: string, signal: AbortSignal): Promise<void> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const partial = `${target}.${randomBytes(6).toString('hex')}${PARTIAL_SUFFIX}`;
    try {
      // `flush`: on disk before the rename makes it visible, so a crash cannot leave a short file in place.
      await pipeline(body, createWriteStream(partial, { flush: true }), { signal });
      await rename(partial, target);
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
  }

  async open(key: string, range: ByteRange | undefined): Promise<Readable> {
    let file;
    try {
      file = await open(this.path(key), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CopyMissingError(`no file for ${key}`);
      throw err;
    }
    return file.createReadStream({ highWaterMark: READ_CHUNK_BYTES, ...(range ? { start: range.start, end: range.end } : {}) });
  }

  async remove(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  /** Partial files not written to since `beforeMs` (a live copy writes to its own all along). */
  async removeAbandoned(beforeMs: number): Promise<number> {
    let removed = 0;
    for (const prefix of await entries(this.root)) {
      if (!prefix.isDirectory()) continue;
      const dir = join(this.root, prefix.name);
      for (const file of await entries(dir)) {
        if (!file.isFile() || !file.name.endsWith(PARTIAL_SUFFIX)) continue;
        const path = join(dir, file.name);
        // Gone meanwhile (renamed into place, or removed by another replica sharing the directory): not ours to count.
        const written = await stat(path).then((s) => s.mtimeMs, () => undefined);
        if (written === undefined || written >= beforeMs) continue;
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
  }

  close(): void {}
}
