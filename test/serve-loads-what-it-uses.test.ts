import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { ROOT, tempDir } from './cli-helpers.js'
import { clientCredentialsRoute, recordingUpstream, tokenServer } from './helpers.js'
import { loadRecorder } from './module-recorder.js'
import { freePort, spawnServe, writeConfig } from './operability-helpers.js'

/**
 * `serve` loads what its config and its traffic use: prom-client only with an
 * admin port (nothing else can read the metrics), ws only once a websocket
 * upgrade comes, and of undici its pools, request and errors, never its index
 * (which builds fetch, WebSocket, caches and mocks, and loads Node's own copy
 * of undici besides). prom-client and ws are bundles of their own in dist/,
 * read when first used; every file the process reads or resolves is recorded
 * (test/module-recorder.ts), a bundle standing for the sources it holds.
 * Never, whatever the config: the schema compilers (ajv, fast-json-stringify)
 * and light-my-request (fastify's inject()), which the server does not use,
 * nor thread-stream (pino's transports), which it does not start;
 * and pino is read from the server's bundle, not file by file.
 */
const PROM_CLIENT = /\/node_modules\/prom-client\//
const WS = /\/node_modules\/ws\//
const UNDICI_INDEX = /\/node_modules\/undici\/index\.js$/
const NEVER = [
  /\/node_modules\/ajv\//,
  /\/node_modules\/ajv-formats\//,
  /\/node_modules\/@fastify\/ajv-compiler\//,
  /\/node_modules\/@fastify\/fast-json-stringify-compiler\//,
  /\/node_modules\/fast-json-stringify\/index\.js$/,
  /\/node_modules\/light-my-request\//,
  // pino's transports' runner: the server starts none, and the package does not depend on it.
  /\/node_modules\/thread-stream\//
]
const PINO_FILE = /\/node_modules\/pino\//

async function serveAndProxy (t: TestContext, admin: boolean): Promise<string[]> {
  const upstream = await recordingUpstream(t)
  const tokens = await tokenServer(t)
  const port = await freePort()
  const file = join(tempDir(t), 'serve.json')
  writeConfig(file, {
    listen: { host: '127.0.0.1', port },
    admin: admin ? { host: '127.0.0.1', port: 0 } : false,
    routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) }
  })
  const recorder = loadRecorder(t)
  const serve = await spawnServe(t, file, undefined, undefined, recorder.env)
  const res = await fetch(`http://127.0.0.1:${port}/api/x`)
  assert.equal(res.status, 200)
  assert.equal(((await res.json()) as { authorization: string }).authorization, 'Bearer token-1', 'the request went upstream with its token')
  // The recorder writes at exit: a SIGTERM ends serve gracefully.
  serve.child.kill('SIGTERM')
  assert.equal((await serve.exited).code, 0)
  assert.ok(recorder.files().includes(join(ROOT, 'dist/serve.js')), 'the server\'s bundle was read')
  const loaded = recorder.loaded()
  assert.ok(loaded.some((url) => url.endsWith('/src/proxy/forward.ts')), 'the recorder saw the proxy load')
  assert.ok(loaded.some((url) => url.endsWith('/node_modules/undici/lib/dispatcher/agent.js')), 'the recorder saw undici\'s pools load')
  assert.ok(loaded.some((url) => url.endsWith('/node_modules/pino/pino.js')), 'the recorder saw pino load')
  assert.deepEqual(loaded.filter((url) => NEVER.some((pattern) => pattern.test(url))), [], 'neither schema compilers nor light-my-request')
  assert.deepEqual(recorder.files().filter((path) => PINO_FILE.test(path)), [], 'pino is in the server\'s bundle')
  return loaded
}

test('serve without an admin port, proxying plain requests, loads neither prom-client, ws nor undici\'s index', async (t) => {
  const loaded = await serveAndProxy(t, false)
  assert.deepEqual(loaded.filter((url) => [PROM_CLIENT, WS, UNDICI_INDEX].some((pattern) => pattern.test(url))), [])
})

test('serve with an admin port loads prom-client for its /metrics', async (t) => {
  const loaded = await serveAndProxy(t, true)
  assert.ok(loaded.some((url) => PROM_CLIENT.test(url)), 'prom-client loaded')
  assert.deepEqual(loaded.filter((url) => [WS, UNDICI_INDEX].some((pattern) => pattern.test(url))), [])
})
