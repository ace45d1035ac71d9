import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { clientCredentialsRoute, recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { rawRequest } from './proxy-http-helpers.js'
import { ManualClock, tokenOf } from './token-lifecycle-helpers.js'

const staticAuth = { type: 'static', token: 'route-key-1234' } as const
const SEARCH = JSON.stringify({ query: { match: { title: 'proxy' } }, size: 3 })

/** An upstream that answers with the method and the body it received, as Elasticsearch reads `GET _search`. */
async function echoingUpstream (t: Parameters<typeof recordingUpstream>[0]) {
  return await recordingUpstream(t, (req, res) => {
    sendJson(res, 200, { method: req.method, url: req.url, contentType: req.headers['content-type'] ?? null, body: req.body.toString('utf8') })
  })
}

test('a GET with a JSON body (Elasticsearch _search) reaches the upstream with its body', async (t) => {
  const upstream = await echoingUpstream(t)
  const proxy = await startProxy(t, { routes: { es: { upstream: upstream.url, auth: staticAuth } } })

  const res = await rawRequest(proxy.url, { method: 'GET', path: '/es/books/_search', headers: { 'content-type': 'application/json' }, body: SEARCH })
  assert.equal(res.status, 200)
  assert.deepEqual(JSON.parse(res.body.toString('utf8')), { method: 'GET', url: '/books/_search', contentType: 'application/json', body: SEARCH })
  assert.equal(upstream.requests[0]?.headers['content-length'], String(Buffer.byteLength(SEARCH)))
})

test('a chunked GET body streams to the upstream too', async (t) => {
  const upstream = await echoingUpstream(t)
  const proxy = await startProxy(t, { routes: { es: { upstream: upstream.url, auth: staticAuth } } })

  // node:http frames a GET body only when asked to.
  const res = await rawRequest(proxy.url, { method: 'GET', path: '/es/_search', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, body: Readable.from([Buffer.from(SEARCH.slice(0, 10)), Buffer.from(SEARCH.slice(10))]) })
  assert.equal(res.status, 200, res.body.toString())
  assert.equal((JSON.parse(res.body.toString('utf8')) as { body: string }).body, SEARCH)
})

test('a GET with a body refused for its token is replayed with the same body', async (t) => {
  const clock = new ManualClock()
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t, (req, res) => {
    if (tokenOf(req) === 'token-1') {
      clock.advance(2000)
      sendJson(res, 401, { error: 'invalid_token' })
      return
    }
    sendJson(res, 200, { method: req.method, body: req.body.toString('utf8') })
  })
  const proxy = await startProxy(t, { routes: { es: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }, { now: clock.now })

  const res = await rawRequest(proxy.url, { method: 'GET', path: '/es/_search', headers: { 'content-type': 'application/json' }, body: SEARCH })
  assert.equal(res.status, 200)
  assert.deepEqual(JSON.parse(res.body.toString('utf8')), { method: 'GET', body: SEARCH })
  assert.deepEqual(upstream.requests.map((r) => r.body.toString('utf8')), [SEARCH, SEARCH])
})

test('a GET without a body still reaches the upstream without one', async (t) => {
  const upstream = await echoingUpstream(t)
  const proxy = await startProxy(t, { routes: { es: { upstream: upstream.url, auth: staticAuth } } })

  const res = await rawRequest(proxy.url, { method: 'GET', path: '/es/_cat/indices' })
  assert.equal(res.status, 200)
  assert.equal((JSON.parse(res.body.toString('utf8')) as { body: string }).body, '')
  assert.equal(upstream.requests[0]?.headers['content-length'], undefined)
  assert.equal(upstream.requests[0]?.headers['transfer-encoding'], undefined)
})
