/** File helpers: whole-file reads with errors that name the path, and atomic writes. */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '@mcp-medsam/core/common';

/** Read a whole file. A missing or unreadable path gives an InputError naming it. */
export async function readFileBytes(file: string): Promise<Uint8Array> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a directory' : err.message;
    throw new InputError(`cannot read file (${why})`, { file, cause: e });
  }
  // A plain Uint8Array view (not a Buffer) so that subarrays and equality behave like any other bytes.
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Write `bytes` to `file` atomically: the data goes to a temporary file in the same directory,
 * is flushed to disk, and is then renamed over `file`, so readers see either the old or the new
 * contents, never a partial file. Failures give an InputError naming the path.
 */
export async function writeFileAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let created = false;
  try {
    const fh = await open(tmp, 'wx');
    created = true;
    try {
      let off = 0;
      while (off < bytes.length) {
        const { bytesWritten } = await fh.write(bytes, off, Math.min(bytes.length - off, 1 << 30));
        off += bytesWritten;
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    if (created) await unlink(tmp).catch(() => undefined);
    throw new InputError(`cannot write file (${(e as Error).message})`, { file, cause: e });
  }
}
