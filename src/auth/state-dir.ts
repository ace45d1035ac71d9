import { constants } from 'node:fs'
import { lstat, open } from 'node:fs/promises'

/** Token, key and lock files are a few hundred bytes: anything far larger is not one of ours. */
const MAX_STATE_FILE_BYTES = 1024 * 1024

/** A file in the state dir that is not a regular file (a FIFO, a device, a link): never opened for its content. */
export class NotRegularFileError extends Error {
  readonly code = 'ENOTREG'
}

export interface StateFile {
  data: Buffer
  ino: number
  mtimeMs: number
}

/**
 * Reads a file of the state dir without ever blocking on it: a FIFO planted
 * under a token file's name would otherwise hold the read (and a thread of
 * libuv's pool) forever. The name is checked before it is opened (lstat: not
 * a link, a FIFO or a device, as opening some devices does something), then
 * opened non-blocking without following a link, and the opened file checked
 * again (fstat), in case the name changed in between. Its inode and mtime
 * come from that same open file, so they describe exactly the bytes read.
 * ENOENT passes through as it is.
 */
export async function readStateFile (path: string): Promise<StateFile> {
  const refused = (): NotRegularFileError => new NotRegularFileError(`${path} is not a regular file`)
  if (!(await lstat(path)).isFile()) throw refused()
  const handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0))
  try {
    const stat = await handle.stat()
    if (!stat.isFile()) throw refused()
    if (stat.size > MAX_STATE_FILE_BYTES) throw new Error(`${path} is larger than ${MAX_STATE_FILE_BYTES / 1024 / 1024} MiB`)
    const data = await handle.readFile()
    return { data, ino: stat.ino, mtimeMs: stat.mtimeMs }
  } finally {
    await handle.close()
  }
}
