import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { runCli, tempDir } from './cli-helpers.js'
import { tokenServer } from './helpers.js'
import { moduleRecorder } from './module-recorder.js'

/**
 * `check` and `token` build the brokers alone: they start no HTTP server and
 * load none of the proxy, admin or metrics code, nor fastify, prom-client,
 * ws or pino-pretty, so they start fast and a scripted `token` stays light.
 * Every module the CLI process resolves is recorded (test/module-recorder.ts).
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
