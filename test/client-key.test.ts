import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clientCredentialsRoute, recordingUpstream, startProxy, tokenServer } from './helpers.js'
import { errorBody, headerNames, rawRequest } from './proxy-http-helpers.js'

const KEY = 'local-proxy-key-5f2c9a71e4'

/** With security.clientKey set, only requests carrying it in `x-proxy-key` get the route's credential. */
test('without the right x-proxy-key a request gets 401 CLIENT_KEY_INVALID and causes no token or upstream work', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { security: { clientKey: KEY }, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })

  const wrong: Array<[string, Record<string, string | string[]>, string?]> = [
    ['no key', {}],
    ['empty key', { 'x-proxy-key': '' }],
    ['another key of the same length', { 'x-proxy-key': KEY.replace(/.$/, 'X') }],
    ['a prefix of the key', { 'x-proxy-key': KEY.slice(0, -1) }],
    ['the key plus one character', { 'x-proxy-key': `${KEY}0` }],
    ['a much longer value', { 'x-proxy-key': KEY.repeat(50) }],
    ['the key in another case', { 'x-proxy-key': KEY.toUpperCase() }],
    ['the key twice in one header value', { 'x-proxy-key': `${KEY}, ${KEY}` }],
    ['the key sent twice', { 'x-proxy-key': [KEY, KEY] }],
    ['the key as a bearer token', { authorization: `Bearer ${KEY}` }],
    ['the key in another header', { 'x-api-key': KEY }],
    ['the key in the query string', {}, `/api/x?x-proxy-key=${KEY}`]
  ]
  for (const [what, headers, path] of wrong) {
    const res = await rawRequest(proxy.url, { path: path ?? '/api/x', headers })
    assert.equal(res.status, 401, what)
    assert.match(String(res.headers['content-type']), /^application\/json/, what)
    assert.equal(errorBody(res).code, 'CLIENT_KEY_INVALID', what)
    assert.ok(!res.body.toString().includes(KEY), `${what}: the key is not echoed`)
  }
  assert.equal(upstream.requests.length, 0, 'nothing reached the upstream')
  assert.equal(tokens.calls.length, 0, 'no token was requested')
  assert.ok(!proxy.logs.text().includes(KEY), 'the key is not logged')

  // The header name is case-insensitive like any other.
  const res = await rawRequest(proxy.url, { path: '/api/x', headers: { 'X-Proxy-Key': KEY } })
  assert.equal(res.status, 200)
  const got = upstream.requests[0]
  assert.ok(got !== undefined)
  assert.equal(got.headers.authorization, 'Bearer token-1')
  assert.ok(!headerNames(got.rawHeaders).includes('x-proxy-key'), 'the key is not forwarded')
  assert.ok(!proxy.logs.text().includes(KEY), 'the key is not logged')
})

test('without security.clientKey no key is needed', async (t) => {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, auth: { type: 'static', token: 'route-key-1234' } } } })
  assert.equal((await rawRequest(proxy.url, { path: '/api/x' })).status, 200)
  assert.equal((await rawRequest(proxy.url, { path: '/api/y', headers: { 'x-proxy-key': 'anything' } })).status, 200)
  assert.deepEqual(upstream.requests.map((r) => r.url), ['/x', '/y'])
})
