import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { ROOT, runCli, tempDir } from './cli-helpers.js'
import { tokenServer } from './helpers.js'
import { loadRecorder } from './module-recorder.js'

/**
 * `check` and `token` build the brokers alone: they start no HTTP server and
 * load none of the proxy, admin or metrics code, nor fastify, prom-client,
 * ws or pino-pretty, so they start fast and a scripted `token` stays light.
 * Every file the CLI process reads or resolves is recorded; a file of the
 * bundle (dist/) stands for the sources its source map lists.
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
    const recorder = loadRecorder(t)
    const args = command === 'check' ? ['check', '-c', file] : ['token', 'api', '-c', file]
    const result = await runCli(args, { env: recorder.env })
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
  const recorder = loadRecorder(t)
  const stored = await runCli(['token', 'api', '-c', file], { env: recorder.env })
  assert.equal(stored.code, 0, stored.stderr)
  assert.equal(stored.stdout, first.stdout, 'the stored token was printed')
  assert.equal(tokens.calls.length, 1, 'no second token request')
  const loaded = recorder.loaded()
  assert.ok(loaded.some((url) => url.endsWith('/src/auth/file-token-store.ts')), 'the recorder saw the file store load')
  assert.deepEqual(loaded.filter((url) => [...SERVER_MODULES, ...REQUEST_MODULES].some((pattern) => pattern.test(url))), [])
  // The tools' bundle, compiled from its code cache; undici's bundle is not even read.
  const files = recorder.files()
  const dist = (name: string): string => join(ROOT, 'dist', name)
  assert.ok(files.includes(dist('tools.js')) && files.includes(dist('tools.js.v8-cache')), 'the tools bundle and its code cache are read')
  for (const name of ['serve.js', 'undici.js']) assert.ok(!files.includes(dist(name)), `dist/${name} is not read`)
  // The token goes out by write(2) on descriptor 1, not through process.stdout, which for a pipe
  // (as here and under $(...)) is a socket and loads node:net. The file store's calls are
  // node:fs's (src/auth/fs-async.ts): node:fs/promises loads more with it.
  const builtins = recorder.builtins()
  for (const builtin of ['http', 'https', 'tls', 'net', 'child_process', 'worker_threads', 'fs/promises']) {
    assert.ok(!builtins.includes(builtin), `node:${builtin} is not loaded; loaded: ${builtins.join(', ')}`)
  }
})

test('under --enable-source-maps, Node\'s own loader runs the bundles and `token` works as without', async (t) => {
  const tokens = await tokenServer(t)
  const file = writeRoutes(t, tokens.tokenUrl, ['store:', '  type: file', `  dir: ${join(tempDir(t), 'state')}`])
  // The first run asks for the token (tools.js, then undici.js); the second answers from the store.
  const first = await runCli(['token', 'api', '-c', file], { env: { NODE_OPTIONS: '--enable-source-maps' } })
  assert.equal(first.code, 0, first.stderr)
  assert.match(first.stdout, /^token-1\n$/)
  const stored = await runCli(['token', 'api', '-c', file], { env: { NODE_OPTIONS: '--enable-source-maps' } })
  assert.equal(stored.code, 0, stored.stderr)
  assert.equal(stored.stdout, first.stdout)
  assert.equal(tokens.calls.length, 1, 'the second answer came from the store')
})

test('`token` that must ask for a token reads undici\'s bundle then, and still nothing of the server', async (t) => {
  const tokens = await tokenServer(t)
  const file = writeRoutes(t, tokens.tokenUrl)
  const recorder = loadRecorder(t)
  const result = await runCli(['token', 'api', '-c', file], { env: recorder.env })
  assert.equal(result.code, 0, result.stderr)
  assert.equal(tokens.calls.length, 1)
  const files = recorder.files()
  assert.ok(files.includes(join(ROOT, 'dist/undici.js')) && files.includes(join(ROOT, 'dist/undici.js.v8-cache')), 'undici\'s bundle and its code cache are read')
  assert.ok(!files.includes(join(ROOT, 'dist/serve.js')), 'dist/serve.js is not read')
})

/** How `node [FLAGS] -e` loading each bundle of DIR through dist/bundle-loader.js used its code cache. */
async function cacheUse (dir: string, flags: string[] = [], bundles = ['tools', 'undici', 'serve']): Promise<Record<string, string>> {
  const script = [
    `const { loadBundle } = require(${JSON.stringify(join(dir, 'bundle-loader.js'))})`,
    'const use = {}',
    `for (const name of ${JSON.stringify(bundles)}) use[name] = loadBundle(${JSON.stringify(dir)} + '/' + name + '.js').cache`,
    'process.stdout.write(JSON.stringify(use))',
    'process.exit(0)'
  ].join('\n')
  return await new Promise((resolve, reject) => {
    execFile(process.execPath, [...flags, '-e', script], { env: { PATH: process.env.PATH }, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${err.message}\n${stderr}`))
      else resolve(JSON.parse(stdout) as Record<string, string>)
    })
  })
}

test('the Node that built dist/ compiles every bundle from its code cache; V8 flags make V8 refuse them', async () => {
  assert.deepEqual(await cacheUse(join(ROOT, 'dist')), { tools: 'used', undici: 'used', serve: 'used' })
  assert.deepEqual(await cacheUse(join(ROOT, 'dist'), ['--max-old-space-size=300']), { tools: 'rejected', undici: 'rejected', serve: 'rejected' })
})

test('a cache is not used for a bundle changed after the build, even by as many bytes, nor when the cache itself is damaged', async (t) => {
  const dir = join(tempDir(t), 'dist')
  cpSync(join(ROOT, 'dist'), dir, { recursive: true })
  // A same-length edit: V8's own check compares lengths only, and would run the cached old code.
  const tools = readFileSync(join(dir, 'tools.js'), 'latin1')
  assert.ok(tools.includes('never expires'))
  writeFileSync(join(dir, 'tools.js'), tools.replace('never expires', 'NEVER EXPIRES'), 'latin1')
  // Bytes of the cache's payload changed: V8 does not check them and could crash on them.
  const cache = readFileSync(join(dir, 'undici.js.v8-cache'))
  for (let i = 64; i < 84; i++) cache[i] = (cache[i] as number) ^ 0x5a
  writeFileSync(join(dir, 'undici.js.v8-cache'), cache)
  // dist/serve.js needs node_modules (pino), which the copy has not: the two others.
  assert.deepEqual(await cacheUse(dir, [], ['tools', 'undici']), { tools: 'none', undici: 'none' })
})
