import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { freePort, listen, recordingUpstream, startProxy, type TestProxy } from './helpers.js'
import { errorBody, rawRequest, type RawResponse } from './proxy-http-helpers.js'

const staticAuth = { type: 'static', token: 'route-key-1234' } as const

/** A proxy with the failing route `bad` and a working route `good`. */
async function proxyWithBadRoute (t: TestContext, bad: Record<string, unknown>): Promise<{ proxy: TestProxy, good: Awaited<ReturnType<typeof recordingUpstream>> }> {
  const good = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { bad: { auth: staticAuth, ...bad } as never, good: { upstream: good.url, auth: staticAuth } } })
  return { proxy, good }
}

function assertJsonError (res: RawResponse, status: number, code: string): void {
  assert.equal(res.status, status)
  assert.match(String(res.headers['content-type']), /^application\/json/)
  const error = errorBody(res)
  assert.equal(error.code, code)
  assert.equal(error.route, 'bad')
  assert.equal(typeof error.message, 'string')
  assert.ok(!error.message.includes('route-key-1234'), 'the credential is not in the message')
}

async function assertStillUp (proxy: TestProxy, good: { requests: unknown[] }): Promise<void> {
  const before = good.requests.length
  const res = await rawRequest(proxy.url, { path: '/good/after' })
  assert.equal(res.status, 200, 'the proxy still serves after the failure')
  assert.equal(good.requests.length, before + 1)
}

test('connection refused by the upstream: 502 UPSTREAM_UNAVAILABLE', async (t) => {
  const port = await freePort()
  const { proxy, good } = await proxyWithBadRoute(t, { upstream: `http://127.0.0.1:${port}` })

  for (const method of ['GET', 'POST']) {
    const res = await rawRequest(proxy.url, { method, path: '/bad/x', ...(method === 'POST' ? { body: '{"a":1}', headers: { 'content-type': 'application/json' } } : {}) })
    assertJsonError(res, 502, 'UPSTREAM_UNAVAILABLE')
    await assertStillUp(proxy, good)
  }
})

test('an upstream that does not answer within the route timeout: 504 UPSTREAM_TIMEOUT', async (t) => {
  let received = 0
  const hung = await listen(t, () => {
    received++ // never answers; the server is closed after the test
  })
  const { proxy, good } = await proxyWithBadRoute(t, { upstream: hung.url, timeout: 300 })

  const started = Date.now()
  const res = await rawRequest(proxy.url, { path: '/bad/slow' })
  const elapsed = Date.now() - started
  assertJsonError(res, 504, 'UPSTREAM_TIMEOUT')
  assert.equal(received, 1, 'the request did reach the upstream')
  assert.ok(elapsed >= 250, `answered after ${elapsed} ms, before the timeout`)
  assert.ok(elapsed < 3000, `answered after ${elapsed} ms, long after the 300 ms timeout`)
  await assertStillUp(proxy, good)
})

test('an upstream that resets the connection before answering: 502 UPSTREAM_UNAVAILABLE', async (t) => {
  let received = 0
  const resetting = await listen(t, (req) => {
    received++
    req.socket.resetAndDestroy()
  })
  const { proxy, good } = await proxyWithBadRoute(t, { upstream: resetting.url })

  for (let i = 0; i < 2; i++) {
    const res = await rawRequest(proxy.url, { path: `/bad/reset-${i}` })
    assertJsonError(res, 502, 'UPSTREAM_UNAVAILABLE')
    await assertStillUp(proxy, good)
  }
  assert.ok(received >= 2, 'the requests did reach the upstream')
})

test('an upstream that closes the connection before answering: 502 UPSTREAM_UNAVAILABLE', async (t) => {
  const closing = await listen(t, (req) => {
    req.socket.destroy()
  })
  const { proxy, good } = await proxyWithBadRoute(t, { upstream: closing.url })

  const res = await rawRequest(proxy.url, { path: '/bad/closed' })
  assertJsonError(res, 502, 'UPSTREAM_UNAVAILABLE')
  await assertStillUp(proxy, good)
})

test('an upstream 503 on a GET is passed on, not retried behind the client\'s back', async (t) => {
  const upstream = await recordingUpstream(t, (_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"error":"busy"}')
  })
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, auth: { type: 'static', token: 'static-key-1234' } } } })
  const res = await rawRequest(proxy.url, { path: '/api/x' })
  assert.equal(res.status, 503)
  assert.equal(res.headers['retry-after'], '1')
  assert.equal(upstream.requests.length, 1, 'one upstream request per client request')
})

test('an upstream answer with a status outside 100-599 or a malformed head: 502 UPSTREAM_UNAVAILABLE', async (t) => {
  const answers = ['HTTP/1.1 999 Odd\r\ncontent-length: 2\r\n\r\nok', 'HTTP/1.1 200 OK\r\nx-bad: a\x01b\r\ncontent-length: 2\r\n\r\nok', 'NOT-HTTP\r\n\r\n']
  let next = 0
  const odd = await listen(t, (req) => {
    const answer = answers[next++] as string
    req.socket.end(answer, 'latin1')
  })
  const { proxy, good } = await proxyWithBadRoute(t, { upstream: odd.url })
  for (let i = 0; i < answers.length; i++) {
    const res = await rawRequest(proxy.url, { path: `/bad/odd-${i}` })
    assertJsonError(res, 502, 'UPSTREAM_UNAVAILABLE')
    await assertStillUp(proxy, good)
  }
})
