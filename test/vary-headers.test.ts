import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { recordingUpstream, startProxy } from './helpers.js'
import { rawRequest, type RawResponse } from './proxy-http-helpers.js'

const ALLOWED = 'https://dashboard.example.test'
const staticAuth = { type: 'static', token: 'route-key-1234' } as const

/** A route in front of an upstream that answers with `headers` (an array value goes out as several lines). */
async function setup (t: TestContext, headers: Record<string, string | string[]>) {
  const upstream = await recordingUpstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', ...headers }).end('ok')
  })
  const proxy = await startProxy(t, { security: { allowedOrigins: [ALLOWED] }, routes: { api: { upstream: upstream.url, auth: staticAuth } } })
  return { proxy }
}

/** Every line of one header, in order, as the client received them. */
function lines (res: RawResponse, name: string): string[] {
  return res.rawHeaders.filter((_, i) => i % 2 === 1 && res.rawHeaders[i - 1]?.toLowerCase() === name)
}

test('response headers sent on several lines arrive as those lines', async (t) => {
  const { proxy } = await setup(t, {
    vary: ['Accept-Encoding', 'Accept-Language'],
    link: ['</a>; rel="next"', '</b>; rel="prev"'],
    'cache-control': ['no-store', 'private'],
    'x-trace': ['one', 'two', 'three']
  })
  const res = await rawRequest(proxy.url, { path: '/api/x' })
  assert.equal(res.status, 200)
  assert.deepEqual(lines(res, 'vary'), ['Accept-Encoding', 'Accept-Language'])
  assert.deepEqual(lines(res, 'link'), ['</a>; rel="next"', '</b>; rel="prev"'])
  assert.deepEqual(lines(res, 'cache-control'), ['no-store', 'private'])
  assert.deepEqual(lines(res, 'x-trace'), ['one', 'two', 'three'])
})

test("the CORS grant adds Origin to an upstream's Vary on several lines instead of replacing them", async (t) => {
  const { proxy } = await setup(t, { vary: ['Accept-Encoding', 'Accept-Language, Cookie'] })
  const res = await rawRequest(proxy.url, { path: '/api/x', headers: { origin: ALLOWED } })
  assert.equal(res.status, 200)
  assert.equal(res.headers['access-control-allow-origin'], ALLOWED)
  assert.deepEqual(lines(res, 'vary'), ['Accept-Encoding', 'Accept-Language, Cookie', 'Origin'])
})

test('the CORS grant adds Origin once: not when the upstream already varies on it, nor on "*"', async (t) => {
  for (const vary of [['Accept-Encoding', 'origin'], ['Accept-Encoding', '*'], 'Accept, Origin']) {
    const { proxy } = await setup(t, { vary })
    const res = await rawRequest(proxy.url, { path: '/api/x', headers: { origin: ALLOWED } })
    assert.deepEqual(lines(res, 'vary'), typeof vary === 'string' ? [vary] : vary)
  }
  const { proxy } = await setup(t, { vary: 'Accept-Encoding' })
  const res = await rawRequest(proxy.url, { path: '/api/x', headers: { origin: ALLOWED } })
  assert.deepEqual(lines(res, 'vary'), ['Accept-Encoding, Origin'])
})
