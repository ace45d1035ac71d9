import assert from 'node:assert/strict'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { test, type TestContext } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { runCli, tempDir } from './cli-helpers.js'
import { tokenServer } from './helpers.js'

/**
 * `check` and `token` build the brokers alone: they start no HTTP server and
 * load none of the proxy, admin or metrics code, nor fastify, prom-client,
 * ws or pino-pretty, so they start fast and a scripted `token` stays light.
 * Every module the CLI process resolves is recorded by a module hook; a file
 * of the bundle (dist/) stands for the sources its source map lists.
 */
const SERVER_MODULES = [
  /\/src\/(app|server|demo)\.ts$/,
  /\/src\/(proxy|admin|telemetry)\//,
  /\/node_modules\/(fastify|@fastify\/http-proxy|@fastify\/reply-from|prom-client|ws|pino-pretty)\//
]

/** Answering from the store makes no request and logs nothing: neither the HTTP client nor the logger is loaded. */
const REQUEST_MODULES = [
  /\/node_modules\/(undici|pino)\//
]

function moduleRecorder (t: TestContext): { options: string, loaded: () => string[] } {
  const dir = tempDir(t)
  const log = join(dir, 'modules.log')
  writeFileSync(log, '')
  const hooks = join(dir, 'hooks.mjs')
  writeFileSync(hooks, [
    "import { appendFileSync } from 'node:fs'",
    'let log',
    'export function initialize (data) { log = data.log }',
    'export async function resolve (specifier, context, next) {',
    '  const resolved = await next(specifier, context)',
    "  appendFileSync(log, resolved.url + '\\n')",
    '  return resolved',
    '}'
  ].join('\n'))
  const register = join(dir, 'register.mjs')
  writeFileSync(register, [
    "import { register } from 'node:module'",
    `register(${JSON.stringify(pathToFileURL(hooks).href)}, { data: { log: ${JSON.stringify(log)} } })`
  ].join('\n'))
  return {
    options: `--import ${pathToFileURL(register).href}`,
    loaded: () => sourcesOf(readFileSync(log, 'utf8').split('\n').filter((l) => l !== ''))
  }
}

/** Module URLs, each file of dist/ replaced by the sources bundled into it. */
function sourcesOf (urls: string[]): string[] {
  return urls.flatMap((url) => {
    if (!url.startsWith('file:')) return [url]
    const map = `${fileURLToPath(url)}.map`
    if (!url.includes('/dist/') || !existsSync(map)) return [url]
    const { sources } = JSON.parse(readFileSync(map, 'utf8')) as { sources: string[] }
    return sources.map((source) => pathToFileURL(resolve(dirname(map), source)).href)
  })
}

function writeRoutes (t: TestContext, tokenUrl: string, store: string[] = []): string {
  const file = join(tempDir(t), 'cfg.yaml')
  writeFileSync(file, [
    ...store,
    'routes:',
    '  api:',
    '    upstream: http://127.0.0.1:9/api',
    '    auth:',
    '      type: client_credentials',
    `      tokenUrl: ${tokenUrl}`,
    '      clientId: test-client',
    '      clientSecret: test-client-secret-value',
    '  fixed:',
    '    upstream: http://127.0.0.1:9/fixed',
    '    auth:',
    '      type: static',
    '      token: static-key'
  ].join('\n'))
  return file
}

for (const command of ['check', 'token'] as const) {
  test(`\`${command}\` loads no HTTP server, proxy, admin or metrics code`, async (t) => {
    const tokens = await tokenServer(t)
    const file = writeRoutes(t, tokens.tokenUrl)
    const recorder = moduleRecorder(t)
    const args = command === 'check' ? ['check', '-c', file] : ['token', 'api', '-c', file]
    const result = await runCli(args, { env: { NODE_OPTIONS: recorder.options } })
    assert.equal(result.code, 0, result.stderr)
    assert.equal(tokens.calls.length, 1, 'the command did its work')
    const loaded = recorder.loaded()
    assert.ok(loaded.some((url) => url.endsWith('/src/brokers.ts')), 'the recorder saw the brokers load')
    assert.deepEqual(loaded.filter((url) => SERVER_MODULES.some((pattern) => pattern.test(url))), [])
  })
}

test('`token` answering from the store loads no HTTP client and no logger either', async (t) => {
  const tokens = await tokenServer(t)
  const file = writeRoutes(t, tokens.tokenUrl, ['store:', '  type: file', `  dir: ${join(tempDir(t), 'state')}`])
  const first = await runCli(['token', 'api', '-c', file])
  assert.equal(first.code, 0, first.stderr)
  const recorder = moduleRecorder(t)
  const stored = await runCli(['token', 'api', '-c', file], { env: { NODE_OPTIONS: recorder.options } })
  assert.equal(stored.code, 0, stored.stderr)
  assert.equal(stored.stdout, first.stdout, 'the stored token was printed')
  assert.equal(tokens.calls.length, 1, 'no second token request')
  const loaded = recorder.loaded()
  assert.ok(loaded.some((url) => url.endsWith('/src/auth/file-token-store.ts')), 'the recorder saw the file store load')
  assert.deepEqual(loaded.filter((url) => [...SERVER_MODULES, ...REQUEST_MODULES].some((pattern) => pattern.test(url))), [])
})
