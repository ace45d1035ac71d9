import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, request as httpsRequest } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { test, type TestContext } from 'node:test'
import { generate } from 'selfsigned'
import WebSocket, { WebSocketServer } from 'ws'
import { clientCredentialsRoute, readBody, recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { errorBody, rawRequest } from './proxy-http-helpers.js'
import { openWebsocket, wsBase } from './websocket-helpers.js'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

/** A certificate for 127.0.0.1 and localhost that no CA vouches for. */
const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
  // EC: an RSA key takes a second or more to generate on a busy machine.
  keyType: 'ec',
  algorithm: 'sha256',
  notBeforeDate: new Date(Date.now() - 60_000),
  notAfterDate: new Date(Date.now() + 24 * 3600_000),
  extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] }]
})

interface HttpsServer {
  url: string
  /** Requests that completed the TLS handshake and reached the handler. */
  requests: Array<{ method: string, url: string, authorization: string | undefined }>
}

/**
 * An https server with the self-signed certificate: POST /oauth/token answers a
 * token, anything else answers 200 and is recorded.
 */
async function selfSignedServer (t: TestContext): Promise<HttpsServer> {
  const requests: HttpsServer['requests'] = []
  const server = createServer({ key: pems.private, cert: pems.cert }, (req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization })
    readBody(req).then(() => {
      if (req.method === 'POST' && req.url === '/oauth/token') sendJson(res, 200, { access_token: 'tls-token-1', token_type: 'Bearer', expires_in: 3600 })
      else sendJson(res, 200, { ok: true })
    }, () => res.destroy())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, requests }
}

/** Control: the server is fine for a client that trusts the certificate. */
async function assertValidWhenTrusted (url: string): Promise<void> {
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpsRequest(`${url}/control`, { ca: pems.cert, agent: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0) })
    req.once('error', reject)
    req.end()
  })
  assert.equal(status, 200)
}

test('an upstream with an untrusted certificate is refused: 502, nothing sent', async (t) => {
  const upstream = await selfSignedServer(t)
  const tokens = await tokenServer(t)
  const proxy = await startProxy(t, {
    routes: {
      keyed: { upstream: upstream.url, auth: { type: 'static', token: 'static-secret-key' } },
      oauth: { upstream: upstream.url, auth: { type: 'client_credentials', tokenUrl: tokens.tokenUrl, clientId: 'c', clientSecret: 'client-secret-1' } }
    }
  })

  for (const route of ['keyed', 'oauth']) {
    const res = await rawRequest(proxy.url, { path: `/${route}/data` })
    assert.equal(res.status, 502, route)
    assert.equal(errorBody(res).code, 'UPSTREAM_UNAVAILABLE', route)
    assert.equal(errorBody(res).route, route)
  }
  // The token was obtained, but no request (and so no token) ever reached the upstream.
  assert.equal(tokens.calls.length, 1)
  assert.deepEqual(upstream.requests, [])

  await assertValidWhenTrusted(upstream.url)
  assert.equal(upstream.requests.length, 1)
})

test('a token endpoint with an untrusted certificate is refused: 503 TOKEN_UNAVAILABLE', async (t) => {
  const endpoint = await selfSignedServer(t)
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    routes: { oauth: { upstream: upstream.url, auth: { type: 'client_credentials', tokenUrl: `${endpoint.url}/oauth/token`, clientId: 'c', clientSecret: 'client-secret-1' } } }
  })

  const res = await rawRequest(proxy.url, { path: '/oauth/data' })
  assert.equal(res.status, 503)
  assert.equal(errorBody(res).code, 'TOKEN_UNAVAILABLE')
  assert.equal(errorBody(res).route, 'oauth')
  assert.ok(res.headers['retry-after'] !== undefined, 'Retry-After is set')
  assert.ok(!res.body.toString().includes('client-secret-1'))
  assert.deepEqual(endpoint.requests, [], 'the client secret was never sent')
  assert.equal(upstream.requests.length, 0)

  await assertValidWhenTrusted(endpoint.url)
})

test('a websocket upstream with an untrusted certificate is refused even with NODE_TLS_REJECT_UNAUTHORIZED=0: 502, no handshake', async (t) => {
  const server = createServer({ key: pems.private, cert: pems.cert })
  const handshakes: Array<string | undefined> = []
  const wss = new WebSocketServer({ server, verifyClient: (info, done) => { handshakes.push(info.req.headers.authorization); done(true) } })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => new Promise<void>((resolve) => {
    for (const client of wss.clients) client.terminate()
    wss.close()
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  const tokens = await tokenServer(t)
  // What a user may have set for some other tool: the HTTP legs ignore it, so must the websocket leg.
  const previous = process.env.NODE_TLS_REJECT_UNAUTHORIZED
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'
  t.after(() => {
    if (previous === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED
    else process.env.NODE_TLS_REJECT_UNAUTHORIZED = previous
  })
  const proxy = await startProxy(t, { routes: { live: clientCredentialsRoute(url, tokens.tokenUrl) } })

  const res = await openWebsocket(`${wsBase(proxy.url)}/live/feed`)
  assert.equal(res.status, 502)
  assert.equal((JSON.parse(res.body) as { error: { code: string } }).error.code, 'UPSTREAM_UNAVAILABLE')
  assert.deepEqual(handshakes, [], 'no handshake, and so no token, reached the upstream')

  // Control: the server is fine for a client that trusts the certificate.
  const trusted = new WebSocket(`${url.replace(/^https/, 'wss')}/feed`, { ca: pems.cert })
  await once(trusted, 'open')
  trusted.terminate()
  assert.equal(handshakes.length, 1)
})

/** Reads the CLI's pino lines until `route ready` names the local URL; bounded in time. */
async function localUrl (child: ChildProcess, ms: number): Promise<string> {
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      (async () => {
        for await (const line of lines) {
          let entry: { msg?: string, local?: string }
          try {
            entry = JSON.parse(line) as typeof entry
          } catch {
            continue
          }
          if (entry.msg === 'route ready' && typeof entry.local === 'string') return entry.local
        }
        throw new Error('the CLI ended before a route was ready')
      })(),
      new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no "route ready" line within ${ms} ms`)), ms) })
    ])
  } finally {
    clearTimeout(timer)
    // Keep draining stdout so the child never blocks on a full pipe.
    child.stdout?.resume()
  }
}

test('a certificate trusted through NODE_EXTRA_CA_CERTS works (built CLI)', async (t) => {
  assert.ok(existsSync(CLI), 'dist/cli.js is missing: run `npm run build` first')
  const server = await selfSignedServer(t)
  const dir = await mkdtemp(join(tmpdir(), 'bearer-proxy-tls-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const caFile = join(dir, 'ca.pem')
  const configFile = join(dir, 'config.yaml')
  await writeFile(caFile, pems.cert)
  await writeFile(configFile, [
    'listen: { host: 127.0.0.1, port: 0 }',
    'admin: false',
    'routes:',
    '  secure:',
    `    upstream: ${server.url}/v1`,
    '    auth:',
    '      type: client_credentials',
    `      tokenUrl: ${server.url}/oauth/token`,
    '      clientId: tls-client',
    '      clientSecret: tls-client-secret',
    ''
  ].join('\n'))

  const env: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: caFile }
  delete env.BEARER_PROXY_CONFIG
  const child = spawn(process.execPath, [CLI, 'serve', '-c', configFile, '--log-level', 'info'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
      await exited
      clearTimeout(timer)
    }
  })

  let local: string
  try {
    local = await localUrl(child, 10_000)
  } catch (err) {
    assert.fail(`${(err as Error).message}; stderr: ${stderr}`)
  }
  assert.match(local, /^http:\/\/127\.0\.0\.1:\d+\/secure\/$/)

  const res = await rawRequest(new URL(local).origin, { path: '/secure/items?page=2' })
  assert.equal(res.status, 200, res.body.toString())
  assert.deepEqual(server.requests.map((r) => [r.method, r.url]), [['POST', '/oauth/token'], ['GET', '/v1/items?page=2']])
  assert.equal(server.requests[1]?.authorization, 'Bearer tls-token-1')
})
