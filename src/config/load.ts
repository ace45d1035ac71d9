import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import type { z } from 'zod'
import { ConfigError } from '../errors.js'
import { netographyBase } from '../auth/schemes/netosecret.js'
import { configSchema, type Config, type RouteConfig } from './schema.js'
import { resolveSecrets } from './secrets.js'

export const DEFAULT_CONFIG_PATH = './config/bearer-proxy.yaml'

/** `-c FILE`, else `$BEARER_PROXY_CONFIG`, else `./config/bearer-proxy.yaml` (SPEC "Command line"). */
export function configPath (flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? env.BEARER_PROXY_CONFIG ?? DEFAULT_CONFIG_PATH)
}

/** Reads, resolves and validates a config file (YAML or JSON). Throws ConfigError. */
export function loadConfigFile (file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError([`config: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`])
  }
  let raw: unknown
  try {
    // YAML 1.2 is a superset of JSON, so one parser reads both.
    raw = parseYaml(text, { prettyErrors: false })
  } catch (err) {
    const line = (err as { linePos?: Array<{ line: number }> }).linePos?.[0]?.line
    throw new ConfigError([`config: ${file}${line !== undefined ? ` line ${line}` : ''} is not valid YAML or JSON`])
  }
  return parseConfig(raw, { env, baseDir: dirname(file) })
}

/** Validates an already parsed config object; used for files and for the embedded demo. */
export function parseConfig (raw: unknown, source: { env?: NodeJS.ProcessEnv, baseDir?: string } = {}): Config {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(['config: must be a mapping with at least "routes"'])
  }
  const issues: string[] = []
  const resolved = resolveSecrets(raw, { env: source.env ?? process.env, baseDir: source.baseDir ?? process.cwd() }, issues)
  if (issues.length > 0) throw new ConfigError(issues)
  const result = configSchema.safeParse(resolved, { reportInput: false })
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues))
  const { routes, ...rest } = result.data
  // Like ${file:...} references, a relative stateDir belongs to the config file's folder.
  if (rest.stateDir !== undefined) rest.stateDir = resolve(source.baseDir ?? process.cwd(), rest.stateDir)
  const list: RouteConfig[] = Object.entries(routes).map(([name, route]) => ({
    ...route,
    name,
    prefix: route.prefix ?? `/${name}`,
    // The schema has checked that only netography routes may leave it out.
    upstream: route.upstream ?? (route.auth.type === 'netography' ? netographyBase(route.auth.netosecret) : '')
  }))
  return { ...rest, routes: list }
}

function formatIssues (issues: z.core.$ZodIssue[]): string[] {
  return issues.flatMap((issue) => {
    const where = issue.path.length > 0 ? issue.path.map(String).join('.') : 'config'
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => `${where === 'config' ? key : `${where}.${key}`}: unknown key`)
    // Never echo the received value: it may be a secret.
    const message = /received undefined$/.test(issue.message) ? 'is required' : issue.message.replace(/^Invalid input: /, '')
    return [`${where}: ${message}`]
  })
}
