import assert from 'node:assert/strict'
import type { ServerResponse } from 'node:http'
import { test, type TestContext } from 'node:test'
import { clientCredentialsRoute, recordingUpstream, startProxy, tokenServer, type ReceivedRequest } from './helpers.js'
import { errorBody, rawRequest, type RawResponse } from './proxy-http-helpers.js'

const ALLOWED = 'https://dashboard.example.test'

/**
 * Any web page can make the browser send requests to localhost: only the
 * origins in security.allowedOrigins may use the proxy, and a refused one
 * causes neither a token request nor an upstream request.
 */
async function setup (t: TestContext, respond?: (req: ReceivedRequest, res: ServerResponse) => void) {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t, respond)
  const proxy = await startProxy(t, {
    security: { allowedOrigins: [ALLOWED, 'http://localhost:3000/'] },
    routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) }
  })
  return { tokens, upstream, proxy }
}

function assertOriginRefused (res: RawResponse, what: string): void {
  assert.equal(res.status, 403, what)
  assert.match(String(res.headers['content-type']), /^application\/json/, what)
  assert.equal(errorBody(res).code, 'ORIGIN_NOT_ALLOWED', what)
  assert.equal(res.headers['access-control-allow-origin'], undefined, `${what}: no CORS grant`)
}

test('a request from an origin not in allowedOrigins is refused with 403 ORIGIN_NOT_ALLOWED', async (t) => {
  const { tokens, upstream, proxy } = await setup(t)
  const origins = [
    'https://evil.example', 'null', 'http://dashboard.example.test', 'https://dashboard.example.test:8443',
    'https://dashboard.example.test.evil.example', 'https://evil.example/https://dashboard.example.test', 'http://localhost:3001'
  ]
  for (const origin of origins) {
    assertOriginRefused(await rawRequest(proxy.url, { path: '/api/x', headers: { origin } }), `GET from ${origin}`)
    // A "simple" POST needs no preflight, so the browser sends it straight away: refused all the same.
    assertOriginRefused(await rawRequest(proxy.url, {
      method: 'POST', path: '/api/x', headers: { origin, 'content-type': 'text/plain;charset=UTF-8' }, body: '{"delete":"everything"}'
    }), `no-cors POST from ${origin}`)
  }
  assert.equal(upstream.requests.length, 0, 'nothing reached the upstream')
  assert.equal(tokens.calls.length, 0, 'no token was requested')
})

test('a cross-site or same-site browser request without Origin is refused; same-origin and none are not', async (t) => {
  const { tokens, upstream, proxy } = await setup(t)
  for (const site of ['cross-site', 'same-site']) {
    assertOriginRefused(await rawRequest(proxy.url, { path: '/api/x', headers: { 'sec-fetch-site': site, 'sec-fetch-mode': 'no-cors' } }), `Sec-Fetch-Site ${site}`)
  }
  assert.equal(upstream.requests.length, 0)
  assert.equal(tokens.calls.length, 0)

  // A URL typed into the address bar (none), or the proxy's own pages (same-origin).
  for (const site of ['same-origin', 'none']) {
    const res = await rawRequest(proxy.url, { path: '/api/x', headers: { 'sec-fetch-site': site } })
    assert.equal(res.status, 200, `Sec-Fetch-Site ${site}`)
  }
  assert.equal(upstream.requests.length, 2)
})

test('a preflight from a refused origin gets 403 and is not forwarded', async (t) => {
  const { tokens, upstream, proxy } = await setup(t)
  const res = await rawRequest(proxy.url, {
    method: 'OPTIONS',
    path: '/api/x',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'DELETE', 'access-control-request-headers': 'content-type', 'access-control-request-private-network': 'true' }
  })
  assertOriginRefused(res, 'preflight from https://evil.example')
  assert.equal(res.headers['access-control-allow-private-network'], undefined)
  assert.equal(res.headers['access-control-allow-methods'], undefined)
  assert.equal(upstream.requests.length, 0)
  assert.equal(tokens.calls.length, 0)
})

test('a preflight from an allowed origin is answered by the proxy itself', async (t) => {
  const { tokens, upstream, proxy } = await setup(t)
  const res = await rawRequest(proxy.url, {
    method: 'OPTIONS',
    path: '/api/items/7',
    headers: {
      origin: ALLOWED,
      'access-control-request-method': 'PUT',
      'access-control-request-headers': 'content-type, x-request-id',
      // Chrome's Private Network Access: a public page asking to reach a loopback server.
      'access-control-request-private-network': 'true'
    }
  })
  assert.equal(res.status, 204)
  assert.equal(res.headers['access-control-allow-origin'], ALLOWED, 'the exact origin, never *')
  assert.match(String(res.headers['access-control-allow-methods']), /\bPUT\b/)
  assert.equal(res.headers['access-control-allow-headers'], 'content-type, x-request-id')
  assert.equal(res.headers['access-control-allow-private-network'], 'true')
  assert.match(String(res.headers.vary), /\borigin\b/i)
  assert.equal(res.body.length, 0)

  // Without the private-network request, no private-network grant.
  const plain = await rawRequest(proxy.url, { method: 'OPTIONS', path: '/api/items/7', headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'GET' } })
  assert.equal(plain.status, 204)
  assert.equal(plain.headers['access-control-allow-origin'], 'http://localhost:3000', 'allowedOrigins entries match without their trailing slash')
  assert.equal(plain.headers['access-control-allow-private-network'], undefined)

  assert.equal(upstream.requests.length, 0, 'the preflight is not forwarded')
  assert.equal(tokens.calls.length, 0, 'a preflight needs no token')
})

test("an allowed origin's request is forwarded and its answer carries the CORS grant", async (t) => {
  const { upstream, proxy } = await setup(t)
  const res = await rawRequest(proxy.url, { path: '/api/x', headers: { origin: ALLOWED } })
  assert.equal(res.status, 200)
  assert.equal(res.headers['access-control-allow-origin'], ALLOWED)
  assert.match(String(res.headers.vary), /\borigin\b/i)
  assert.equal(upstream.requests.length, 1)
  assert.equal(upstream.requests[0]?.headers.authorization, 'Bearer token-1')

  // An OPTIONS without Access-Control-Request-Method is not a preflight: it goes to the upstream.
  const options = await rawRequest(proxy.url, { method: 'OPTIONS', path: '/api/x', headers: { origin: ALLOWED } })
  assert.equal(options.status, 200)
  assert.equal(upstream.requests[1]?.method, 'OPTIONS')
})

test('the CORS grant survives an upstream that sends its own Vary and Access-Control-Allow-Origin', async (t) => {
  const { upstream, proxy } = await setup(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', vary: 'Accept-Encoding', 'access-control-allow-origin': 'https://vendor-console.example' }).end('ok')
  })
  const res = await rawRequest(proxy.url, { path: '/api/x', headers: { origin: ALLOWED } })
  assert.equal(res.status, 200)
  assert.equal(upstream.requests.length, 1)
  // The proxy decides which browser origins may read its answers; a cache must key them on Origin.
  assert.equal(res.headers['access-control-allow-origin'], ALLOWED)
  assert.match(String(res.headers.vary), /\borigin\b/i)
  assert.match(String(res.headers.vary), /\baccept-encoding\b/i, "the upstream's Vary is kept")
})

test('clients that send no Origin (curl, scripts) are unaffected', async (t) => {
  const { upstream, proxy } = await setup(t)
  for (const method of ['GET', 'POST', 'OPTIONS']) {
    const res = await rawRequest(proxy.url, { method, path: '/api/x', ...(method === 'POST' ? { body: 'a=1', headers: { 'content-type': 'text/plain' } } : {}) })
    assert.equal(res.status, 200, method)
    assert.equal(res.headers['access-control-allow-origin'], undefined)
  }
  assert.deepEqual(upstream.requests.map((r) => r.method), ['GET', 'POST', 'OPTIONS'])
})
