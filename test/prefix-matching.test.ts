import assert from 'node:assert/strict'
import { test } from 'node:test'
import { recordingUpstream, startProxy } from './helpers.js'
import { errorBody, rawRequest } from './proxy-http-helpers.js'

const staticAuth = { type: 'static', token: 'static-key-1234' } as const

test('a prefix matches only at a segment boundary', async (t) => {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { vivacity: { prefix: '/vivacity', upstream: upstream.url, auth: staticAuth } } })

  for (const path of ['/viv', '/vivacityx', '/vivacityx/a', '/viv/acity']) {
    const res = await rawRequest(proxy.url, { path })
    assert.equal(res.status, 404, path)
    assert.match(String(res.headers['content-type']), /^application\/json/, path)
    const error = errorBody(res)
    assert.equal(error.code, 'ROUTE_NOT_FOUND', path)
    assert.ok(error.message.includes('/vivacity'), `message lists the prefixes: ${error.message}`)
  }
  assert.equal(upstream.requests.length, 0, 'nothing unmatched reaches the upstream')

  const expected: Array<[string, string]> = [['/vivacity', '/'], ['/vivacity/', '/'], ['/vivacity/a/b', '/a/b']]
  for (const [path] of expected) {
    const res = await rawRequest(proxy.url, { path })
    assert.equal(res.status, 200, path)
  }
  // The bare prefix and the prefix with a slash both reach the upstream's root.
  assert.deepEqual(upstream.requests.map((r) => r.url), expected.map(([, url]) => url))
})

test('the 404 message lists every prefix', async (t) => {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    routes: {
      alpha: { prefix: '/alpha', upstream: upstream.url, auth: staticAuth },
      beta: { prefix: '/beta/v2', upstream: upstream.url, auth: staticAuth }
    }
  })
  const res = await rawRequest(proxy.url, { path: '/gamma/x' })
  assert.equal(res.status, 404)
  const error = errorBody(res)
  assert.equal(error.code, 'ROUTE_NOT_FOUND')
  assert.ok(error.message.includes('/alpha') && error.message.includes('/beta/v2'), error.message)
  assert.equal(error.route, undefined, 'no route matched, so none is named')
})

test('the longest prefix wins', async (t) => {
  const short = await recordingUpstream(t)
  const long = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    routes: {
      api: { prefix: '/api', upstream: short.url, auth: staticAuth },
      apiv2: { prefix: '/api/v2', upstream: long.url, auth: staticAuth }
    }
  })

  assert.equal((await rawRequest(proxy.url, { path: '/api/v2/things' })).status, 200)
  assert.equal((await rawRequest(proxy.url, { path: '/api/v2' })).status, 200)
  assert.equal((await rawRequest(proxy.url, { path: '/api/v1/things' })).status, 200)
  // `/api/v2x` is not under `/api/v2`: it belongs to `/api`.
  assert.equal((await rawRequest(proxy.url, { path: '/api/v2x' })).status, 200)

  assert.deepEqual(long.requests.map((r) => r.url), ['/things', '/'])
  assert.deepEqual(short.requests.map((r) => r.url), ['/v1/things', '/v2x'])
})

test('a route with prefix "/" catches every other path', async (t) => {
  const catchAll = await recordingUpstream(t)
  const specific = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    routes: {
      everything: { prefix: '/', upstream: catchAll.url, auth: staticAuth },
      special: { prefix: '/special', upstream: specific.url, auth: staticAuth }
    }
  })

  for (const path of ['/', '/anything', '/deep/er/path?q=1', '/specialx']) {
    assert.equal((await rawRequest(proxy.url, { path })).status, 200, path)
  }
  assert.equal((await rawRequest(proxy.url, { path: '/special/one' })).status, 200)

  assert.deepEqual(catchAll.requests.map((r) => r.url), ['/', '/anything', '/deep/er/path?q=1', '/specialx'])
  assert.deepEqual(specific.requests.map((r) => r.url), ['/one'])
})

test("the upstream's base path is kept", async (t) => {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { viv: { upstream: `${upstream.url}/v3`, auth: staticAuth } } })

  assert.equal((await rawRequest(proxy.url, { path: '/viv/hardware/metadata?x=1' })).status, 200)
  assert.equal((await rawRequest(proxy.url, { path: '/viv' })).status, 200)
  assert.deepEqual(upstream.requests.map((r) => r.url), ['/v3/hardware/metadata?x=1', '/v3'])
})

test('the query string reaches the upstream byte for byte', async (t) => {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { viv: { upstream: upstream.url, auth: staticAuth } } })

  const query = '?a=1&a=2&b=%20+c&flag&e=%2F&f=%7e&g=%C3%A9&h='
  assert.equal((await rawRequest(proxy.url, { path: `/viv/search${query}` })).status, 200)
  assert.equal(upstream.requests[0]?.url, `/search${query}`)
})

test('the bare prefix with a query reaches the upstream root, not the local path', async (t) => {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { viv: { upstream: upstream.url, auth: staticAuth } } })

  assert.equal((await rawRequest(proxy.url, { path: '/viv?a=1&b=%2F' })).status, 200)
  assert.equal((await rawRequest(proxy.url, { path: '/viv/?a=1&b=%2F' })).status, 200)
  assert.deepEqual(upstream.requests.map((r) => r.url), ['/?a=1&b=%2F', '/?a=1&b=%2F'])
})

test('the default prefix is "/" + the route name', async (t) => {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { 'net-api': { upstream: upstream.url, auth: staticAuth } } })

  assert.equal((await rawRequest(proxy.url, { path: '/net-api/devices' })).status, 200)
  assert.deepEqual(upstream.requests.map((r) => r.url), ['/devices'])
  const miss = await rawRequest(proxy.url, { path: '/devices' })
  assert.equal(miss.status, 404)
  assert.ok(errorBody(miss).message.includes('/net-api'))
})
