import { constants, type Stats } from 'node:fs'
import { close, fstat, lstat, mkdir, open, readFile } from './fs-async.js'

/** Token, key and lock files are a few hundred bytes: anything far larger is not one of ours. */
const MAX_STATE_FILE_BYTES = 1024 * 1024

/**
 * Why a folder cannot hold tokens, or undefined. Tokens there are trusted
 * when read back and written through its entries, so nobody but this user
 * may change it: not other users through the mode bits, nor another owner
 * (who could chmod it). The folder itself is inspected (lstat): a symbolic
 * link is refused, since whoever can change the link can point it elsewhere,
 * and following it would check one folder and then use another.
 */
export function dirIssue (dir: string, stat: Stats): string | undefined {
  if (stat.isSymbolicLink()) return `${dir} is a symbolic link; refused, as it could be pointed at another folder: name the folder itself`
  if (!stat.isDirectory()) return `${dir} is not a directory`
  const uid = process.getuid?.()
  if (uid !== undefined && stat.uid !== uid) return `${dir} belongs to another user (uid ${stat.uid}, not ${uid}); use a folder of your own, mode 0700`
  if ((stat.mode & 0o022) !== 0) {
    const mode = (stat.mode & 0o7777).toString(8).padStart(4, '0')
    return `${dir} may be written by other users (mode ${mode}); make it 0700: chmod 700 ${dir}`
  }
  return undefined
}

/**
 * Creates the state dir if needed (0700) and checks it, at every use and not
 * only at config load: the folder may be created, replaced or opened up to
 * others after the process started (a missing folder passes the load check).
 * Throws when it is not fit; the broker logs that as a store failure and
 * keeps its tokens in memory.
 *
 * Between this check and the next file operation the path is looked up again
 * (Node has no openat): a folder of ours that only we may write cannot be
 * swapped by others, unless its parent lets them rename it, which a sticky
 * /tmp does not.
 */
export async function openStateDir (dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  if (process.platform === 'win32') return
  const issue = dirIssue(dir, await lstat(dir))
  if (issue !== undefined) throw new Error(`state dir refused: ${issue}`)
}

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
  const fd = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0))
  try {
    const stat = await fstat(fd)
    if (!stat.isFile()) throw refused()
    if (stat.size > MAX_STATE_FILE_BYTES) throw new Error(`${path} is larger than ${MAX_STATE_FILE_BYTES / 1024 / 1024} MiB`)
    const data = await readFile(fd)
    return { data, ino: stat.ino, mtimeMs: stat.mtimeMs }
  } finally {
    await close(fd)
  }
}
