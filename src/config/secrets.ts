import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs'
import { resolve } from 'node:path'

/**
 * `${env:NAME}`, `${file:PATH}` and `${NAME}` (= `${env:NAME}`) inside any
 * string value. Any other `${kind:...}` is matched too, so that a reference
 * of a kind this version does not know is an error, not an odd variable name.
 */
const REFERENCE = /\$\{(?:([A-Za-z][A-Za-z0-9_-]*):)?([^}]*)\}/g

/** The largest secret file read; a certificate bundle fits with room to spare. */
export const MAX_SECRET_FILE_BYTES = 1024 * 1024

export interface SecretSource {
  env: NodeJS.ProcessEnv
  /** Relative `${file:...}` paths resolve against this folder (the config file's). */
  baseDir: string
  /**
   * Collects every value a reference resolved to, so the schemes can keep them
   * out of their messages whatever option carried them (SPEC: "every value
   * given through a secret reference is a secret").
   */
  referenced: Set<string>
}

/**
 * Replaces secret references in every string of a parsed config, depth first.
 * Problems are collected as "key.path: reason" lines; they name the variable
 * or file, never a value.
 */
export function resolveSecrets (value: unknown, source: SecretSource, issues: string[], path: string[] = []): unknown {
  if (typeof value === 'string') return resolveString(value, source, issues, path)
  if (Array.isArray(value)) return value.map((v, i) => resolveSecrets(v, source, issues, [...path, String(i)]))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = resolveSecrets(v, source, issues, [...path, k])
    return out
  }
  return value
}

function resolveString (text: string, source: SecretSource, issues: string[], path: string[]): string {
  if (!text.includes('${')) return text
  return text.replace(REFERENCE, (_match, kind: string | undefined, name: string) => {
    const where = path.join('.')
    if (name === '') {
      issues.push(`${where}: empty secret reference`)
      return ''
    }
    if (kind === 'file') {
      const read = readSecretFile(resolve(source.baseDir, name))
      if ('problem' in read) {
        issues.push(`${where}: ${read.problem}`)
        return ''
      }
      return remember(source, read.text.replace(/\r?\n$/, ''))
    }
    if (kind !== undefined && kind !== 'env') {
      // Only the kind is named: the rest may be a secret's address or the secret itself.
      issues.push(`${where}: unknown secret reference kind "${kind}" (use \${env:NAME} or \${file:PATH})`)
      return ''
    }
    const found = source.env[name]
    if (found === undefined) {
      issues.push(`${where}: environment variable ${name} is not set`)
      return ''
    }
    return remember(source, found)
  })
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

function remember (source: SecretSource, value: string): string {
  if (value !== '') source.referenced.add(value)
  return value
}

/** The values from `referenced` that occur in any string inside `value` (a route's auth block). */
export function referencedSecretsIn (value: unknown, referenced: ReadonlySet<string>): string[] {
  if (referenced.size === 0) return []
  const texts: string[] = []
  const walk = (v: unknown): void => {
    if (typeof v === 'string') texts.push(v)
    else if (v !== null && typeof v === 'object') for (const x of Object.values(v)) walk(x)
  }
  walk(value)
  return [...referenced].filter((secret) => texts.some((text) => text.includes(secret)))
}
