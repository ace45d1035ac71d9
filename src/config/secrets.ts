import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'

/** `${env:NAME}`, `${file:PATH}` and `${NAME}` (= `${env:NAME}`) inside any string value. */
const REFERENCE = /\$\{(?:(env|file):)?([^}]*)\}/g

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
  if (typeof value === 'string') return rememberReferences(value, resolveString(value, source, issues, path))
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
    const found = source.env[name]
    if (found === undefined) {
      issues.push(`${where}: environment variable ${name} is not set`)
      return ''
    }
    return found
  })
}

/**
 * The values secret references resolved to, so the auth schemes can keep them
 * out of their messages whatever option carried them (SPEC: "every value given
 * through a secret reference is a secret"). Newest last; bounded, so reloads
 * cannot grow it without end.
 */
const referencedValues = new Set<string>()
const MAX_REFERENCED_VALUES = 4096

/**
 * Learns what the references in `template` resolved to by lining `resolved`
 * up with the text around them. With one reference in a string (the usual
 * case) that is exact; with several, a value that contains the text between
 * two references could be split at the wrong place, so the whole stretch from
 * the first value to the last is remembered too.
 */
function rememberReferences (template: string, resolved: string): string {
  if (template === resolved) return resolved
  const literals: string[] = []
  let last = 0
  for (const match of template.matchAll(REFERENCE)) {
    literals.push(template.slice(last, match.index))
    last = match.index + match[0].length
  }
  if (literals.length === 0) return resolved
  literals.push(template.slice(last))
  const lined = new RegExp(`^${literals.map((l) => l.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')).join('([\\s\\S]*?)')}$`).exec(resolved)
  if (lined === null) return resolved
  const values = lined.slice(1)
  if (values.length > 1) values.push(resolved.slice((literals[0] as string).length, resolved.length - (literals.at(-1) as string).length))
  for (const value of values) {
    if (value === undefined || value === '') continue
    referencedValues.delete(value)
    referencedValues.add(value)
  }
  for (const oldest of referencedValues) {
    if (referencedValues.size <= MAX_REFERENCED_VALUES) break
    referencedValues.delete(oldest)
  }
  return resolved
}

/** The values from secret references that occur in any string inside `value` (a route's auth block). */
export function referencedSecretsIn (value: unknown): string[] {
  const texts: string[] = []
  const walk = (v: unknown): void => {
    if (typeof v === 'string') texts.push(v)
    else if (v !== null && typeof v === 'object') for (const x of Object.values(v)) walk(x)
  }
  walk(value)
  return [...referencedValues].filter((secret) => texts.some((text) => text.includes(secret)))
}
