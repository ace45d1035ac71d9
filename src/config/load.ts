import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { LineCounter, parse as parseYaml, YAMLError } from 'yaml'
import type { z } from 'zod/mini'
import { ConfigError } from '../config-error.js'
import { defaultUpstream } from '../schemes/registry.js'
import { configSchema, type Config, type RouteConfig, type StoreConfig } from './schema.js'
import { referencedSecretsIn, resolveSecrets, secretFilesUnder } from './secrets.js'
import { stateDirIssue } from './state-dir-check.js'

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
  const lines = new LineCounter()
  try {
    // YAML 1.2 is a superset of JSON, so one parser reads both.
    // No prettyErrors: those quote the offending line, which may hold a secret.
    raw = parseYaml(text, { prettyErrors: false, lineCounter: lines })
  } catch (err) {
    throw new ConfigError([syntaxIssue(file, text, lines, err)])
  }
  return parseConfig(raw, { env, baseDir: dirname(file) })
}

/** `config: FILE line L, column C: not valid YAML or JSON (reason)`, on one line and without the file's text. */
function syntaxIssue (file: string, text: string, lines: LineCounter, err: unknown): string {
  if (!(err instanceof YAMLError)) return `config: ${file} is not valid YAML or JSON`
  const offset = err.pos[0]
  const { line, col } = lines.linePos(offset)
  const where = `config: ${file} line ${line}, column ${col}: not valid YAML or JSON`
  // The common slip: in a flow collection `{ }` or `[ ]`, an unquoted `${` opens a nested mapping.
  if (text[offset] === '{' && text[offset - 1] === '$') {
    return `${where}: a \${...} reference inside { } or [ ] must be quoted, e.g. token: "\${env:NAME}"`
  }
  if (err.code === 'MULTIPLE_DOCS') return `${where} (more than one document; a config file holds one)`
  // What follows ": " in a few of the parser's messages (a bad escape, a block scalar header) is the file's text.
  const reason = err.code === 'BAD_DQ_ESCAPE' ? 'invalid escape sequence in a double-quoted string' : (err.message.split(/: |\n/)[0] ?? err.code)
  return `${where} (${reason})`
}

/** Validates an already parsed config object; used for files and for the embedded demo. */
export function parseConfig (raw: unknown, source: { env?: NodeJS.ProcessEnv, baseDir?: string } = {}): Config {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(['config: must be a mapping with at least "routes"'])
  }
  const issues: string[] = []
  const referenced = new Set<string>()
  const files = new Map<string, string>()
  const resolved = resolveSecrets(raw, { env: source.env ?? process.env, baseDir: source.baseDir ?? process.cwd(), referenced, files }, issues)
  if (issues.length > 0) throw new ConfigError(issues)
  // jitless: a config is parsed once or twice per process, where compiling zod's fast path
  // (code generated at run time, which no code cache holds) costs more than it saves.
  const result = configSchema.safeParse(resolved, { reportInput: false, jitless: true })
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues))
  const { routes, store: storeInput, ...rest } = result.data
  let store: StoreConfig | undefined
  const dirInput = rest.stateDir ?? (storeInput?.type === 'file' ? storeInput.dir : undefined)
  if (dirInput !== undefined) {
    // Like ${file:...} references, a relative folder belongs to the config file's folder.
    const dir = resolve(source.baseDir ?? process.cwd(), dirInput)
    const issue = stateDirIssue(dir)
    if (issue !== undefined) throw new ConfigError([`${rest.stateDir === undefined ? 'store.dir' : 'stateDir'}: ${issue}`])
    rest.stateDir = dir
    store = { type: 'file', dir }
  } else if (storeInput?.type === 'redis') {
    store = storeInput
  }
  const list: RouteConfig[] = Object.entries(routes).map(([name, route]) => ({
    ...route,
    name,
    prefix: route.prefix ?? `/${name}`,
    // The schema has checked that only a route whose auth names its API may leave it out.
    upstream: route.upstream ?? defaultUpstream(route.auth) ?? '',
    referencedSecrets: referencedSecretsIn(route.auth, referenced),
    secretFiles: secretFilesUnder(files, ['routes', name, 'auth'])
  }))
  return { ...rest, store, routes: list }
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
