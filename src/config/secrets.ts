import { resolve } from 'node:path'
import { readSecretFile, secretFileText } from '../auth/secret-file.js'

export { MAX_SECRET_FILE_BYTES, readSecretFile } from '../auth/secret-file.js'

/**
 * `${env:NAME}`, `${file:PATH}` and `${NAME}` (= `${env:NAME}`) inside any
 * string value. Any other `${kind:...}` is matched too, so that a reference
 * of a kind this version does not know is an error, not an odd variable name.
 */
const REFERENCE = /\$\{(?:([A-Za-z][A-Za-z0-9_-]*):)?([^}]*)\}/g

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
  /**
   * Key path (`routes.k8s.auth.subjectToken`, as `filePathKey` makes it) → absolute file, for every value
   * that is one `${file:PATH}` reference and nothing else: options that a
   * scheme reads again per token request (a rotated workload token) find
   * their file here. The value is still read now, so a missing file is a
   * config error at start, not a failure at the first request.
   */
  files?: Map<string, string>
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

/** A value that is one file reference and nothing around it. */
const WHOLE_FILE_REFERENCE = /^\$\{file:([^}]+)\}$/

function resolveString (text: string, source: SecretSource, issues: string[], path: string[]): string {
  if (!text.includes('${')) return text
  const whole = WHOLE_FILE_REFERENCE.exec(text)?.[1]
  if (whole !== undefined) source.files?.set(filePathKey(path), resolve(source.baseDir, whole))
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
      return remember(source, secretFileText(read.text))
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

/** A key path as a map key: NUL-joined, since route names may contain dots. */
export function filePathKey (path: readonly string[]): string {
  return path.join('\0')
}

/** The entries of `files` under `prefix` (a route's auth block), keyed by the rest of their path, dotted (`subjectToken`). */
export function secretFilesUnder (files: ReadonlyMap<string, string>, prefix: readonly string[]): Record<string, string> {
  const start = filePathKey(prefix) + '\0'
  const under: Record<string, string> = {}
  for (const [key, file] of files) if (key.startsWith(start)) under[key.slice(start.length).split('\0').join('.')] = file
  return under
}
