import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'

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
      const file = resolve(source.baseDir, name)
      try {
        return readFileSync(file, 'utf8').replace(/\r?\n$/, '')
      } catch (err) {
        issues.push(`${where}: cannot read secret file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
        return ''
      }
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
    return found
  })
}
