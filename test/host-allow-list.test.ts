import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { clientCredentialsRoute, recordingUpstream, startProxy, tokenServer } from './helpers.js'
import { errorBody, rawRequest } from './proxy-http-helpers.js'
import { jsonError, socketExchange } from './security-helpers.js'

/**
 * DNS rebinding: a hostile page whose name now resolves to 127.0.0.1 makes
 * the browser send its own name as Host. Only loopback names, listen.host and
 * security.allowedHosts may pass; nothing else may cause token or upstream work.
 */
async function setup (t: TestContext) {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    // Only a name in the config: startProxy itself listens on 127.0.0.1.
    listen: { host: '127.0.0.5', port: 0 },
    security: { allowedHosts: ['proxy.example.test', 'Gateway.Example.Test:8443'] },
    routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) }
  })
  return { tokens, upstream, proxy }
}

test('loopback names, listen.host and allowedHosts are accepted, with or without a port', async (t) => {
  const { tokens, upstream, proxy } = await setup(t)
  const accepted = [
    'localhost', `localhost:${proxy.port}`, `LocalHost:${proxy.port}`,
    '127.0.0.1', `127.0.0.1:${proxy.port}`,
    '[::1]', `[::1]:${proxy.port}`,
    '127.0.0.5', `127.0.0.5:${proxy.port}`,
    'proxy.example.test', 'proxy.example.test:80', 'PROXY.example.test',
    'gateway.example.test:8443'
  ]
  for (const host of accepted) {
    const res = await rawRequest(proxy.url, { path: '/api/x', headers: { host } })
    assert.equal(res.status, 200, `Host ${host}: ${res.body.toString()}`)
  }
  assert.equal(upstream.requests.length, accepted.length)
  assert.equal(tokens.calls.length, 1)
})

test('any other Host is refused with 403 HOST_NOT_ALLOWED before any token or upstream work', async (t) => {
  const { tokens, upstream, proxy } = await setup(t)
  const refused = [
    'localhost.evil.example', `localhost.evil.example:${proxy.port}`,
    'evil.example', `evil.example:${proxy.port}`,
    '127.0.0.1.evil.example', '[::1].evil.example', 'evil.example#localhost',
    // Another loopback address than listen.host, and the wildcard.
    '127.0.0.6', '0.0.0.0', `0.0.0.0:${proxy.port}`,
    // An allowedHosts entry with a port allows that port only.
    'gateway.example.test', 'gateway.example.test:9999',
    // Port tricks: not digits after the colon.
    'localhost:evil', 'localhost:80:81', 'localhost:80.evil.example'
  ]
  for (const host of refused) {
    const res = await rawRequest(proxy.url, { path: '/api/x', headers: { host } })
    assert.equal(res.status, 403, `Host ${host}`)
    assert.match(String(res.headers['content-type']), /^application\/json/)
    assert.equal(errorBody(res).code, 'HOST_NOT_ALLOWED', `Host ${host}`)
  }
  assert.equal(upstream.requests.length, 0, 'nothing reached the upstream')
  assert.equal(tokens.calls.length, 0, 'no token was requested')
})

test('an empty, missing or duplicated Host is refused before any token or upstream work', async (t) => {
  const { tokens, upstream, proxy } = await setup(t)

  // HTTP/1.0 allows leaving Host out.
  const http10 = await socketExchange(proxy.url, 'GET /api/x HTTP/1.0\r\n\r\n')
  assert.equal(http10.status, 403)
  assert.equal(jsonError(http10.body)?.code, 'HOST_NOT_ALLOWED')

  const empty = await socketExchange(proxy.url, 'GET /api/x HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n')
  assert.equal(empty.status, 403)
  assert.equal(jsonError(empty.body)?.code, 'HOST_NOT_ALLOWED')

  // Node keeps the first of two Host headers: the hostile one here.
  const twice = await socketExchange(proxy.url, 'GET /api/x HTTP/1.1\r\nHost: evil.example\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  assert.ok(twice.status === 400 || twice.status === 403, `two Host headers: ${twice.status}`)

  // HTTP/1.1 requires Host (RFC 9112 §3.2: 400); the answer is still the proxy's JSON error shape.
  const missing = await socketExchange(proxy.url, 'GET /api/x HTTP/1.1\r\nConnection: close\r\n\r\n')
  assert.ok(missing.status === 400 || missing.status === 403, `HTTP/1.1 without Host: ${missing.status}`)
  assert.equal(upstream.requests.length, 0, 'nothing reached the upstream')
  assert.equal(tokens.calls.length, 0, 'no token was requested')
  const code = jsonError(missing.body)?.code
  assert.ok(code === 'BAD_REQUEST' || code === 'HOST_NOT_ALLOWED', `HTTP/1.1 without Host answers a JSON error, got ${JSON.stringify(missing.raw)}`)
})
