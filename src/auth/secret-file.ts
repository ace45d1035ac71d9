import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs'
import { TokenError } from './token-error.js'

/** The largest secret file read; a certificate bundle fits with room to spare. */
export const MAX_SECRET_FILE_BYTES = 1024 * 1024

/** A secret file's value: its text without the trailing newline editors add. */
export function secretFileText (text: string): string {
  return text.replace(/\r?\n$/, '')
}

/**
 * The text of a secret file, or why it cannot be one. Only a regular file of
 * at most MAX_SECRET_FILE_BYTES is read: a FIFO or a device would block the
 * start or a reload (the event loop waits on these synchronous reads) or
 * never end. The path is checked before it is opened, since opening some
 * devices does something, and the opened file again (non-blocking), in case
 * the path changed in between.
 */
export function readSecretFile (file: string): { text: string } | { problem: string } {
  const cannot = (err: unknown): { problem: string } => ({ problem: `cannot read secret file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})` })
  try {
    const refused = notReadable(file, statSync(file))
    if (refused !== undefined) return { problem: refused }
  } catch (err) {
    return cannot(err)
  }
  let fd: number
  try {
    fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0))
  } catch (err) {
    return cannot(err)
  }
  try {
    const refused = notReadable(file, fstatSync(fd))
    if (refused !== undefined) return { problem: refused }
    const chunks: Buffer[] = []
    let total = 0
    // Bounded by the size limit, whatever the file grows to while it is read.
    while (total <= MAX_SECRET_FILE_BYTES) {
      const chunk = Buffer.alloc(64 * 1024)
      const n = readSync(fd, chunk, 0, chunk.length, null)
      if (n === 0) return { text: Buffer.concat(chunks, total).toString('utf8') }
      chunks.push(chunk.subarray(0, n))
      total += n
    }
    return { problem: tooLarge(file) }
  } catch (err) {
    return cannot(err)
  } finally {
    closeSync(fd)
  }
}

function notReadable (file: string, stat: Stats): string | undefined {
  if (!stat.isFile()) return `secret file ${file} is ${kindOf(stat)}, not a regular file`
  if (stat.size > MAX_SECRET_FILE_BYTES) return tooLarge(file)
  return undefined
}

function tooLarge (file: string): string {
  return `secret file ${file} is larger than ${MAX_SECRET_FILE_BYTES / 1024 / 1024} MiB`
}

function kindOf (stat: Stats): string {
  if (stat.isDirectory()) return 'a directory'
  if (stat.isFIFO()) return 'a FIFO (named pipe)'
  if (stat.isSocket()) return 'a socket'
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device'
  return 'not a regular file'
}

/**
 * A credential that another process renews in a file (a Kubernetes projected
 * service-account token, a SPIFFE JWT-SVID, a CI OIDC token): `file` is read
 * again at every call, so the newest one is sent; without a file the value
 * is fixed. A file that cannot be read at that moment (mid-rotation) fails
 * the token request as unavailable, so it is retried, never as a refusal.
 * `key` names the option in messages; the file's text never appears in one.
 */
export function secretReader (value: string, file: string | undefined, key: string): () => string {
  if (file === undefined) return () => value
  return () => {
    const read = readSecretFile(file)
    if ('problem' in read) throw new TokenError('unavailable', `${key}: ${read.problem}`)
    const text = secretFileText(read.text)
    if (text === '') throw new TokenError('unavailable', `${key}: secret file ${file} is empty`)
    return text
  }
}
