import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { clientCredentialsRoute, recordingUpstream, startProxy, tokenServer } from './helpers.js'
import { jsonError, socketExchange, type SocketAnswer } from './security-helpers.js'

/**
 * Only origin-form paths inside a route reach an upstream, and what the
 * upstream receives stays under the route's base path (/v3 here): no other
 * server named in the target, no dot-segment however encoded, no "//".
 */
async function setup (t: TestContext) {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { vivacity: clientCredentialsRoute(`${upstream.url}/v3`, tokens.tokenUrl) } })
  const send = async (target: string, method = 'GET'): Promise<SocketAnswer> =>
    await socketExchange(proxy.url, `${method} ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
  return { tokens, upstream, proxy, send }
}

function assertBadRequest (res: SocketAnswer, what: string): void {
  assert.equal(res.status, 400, `${what}: ${res.raw.slice(0, 200)}`)
  assert.equal(jsonError(res.body)?.code, 'BAD_REQUEST', what)
}

test('absolute-form, authority-form and "//" targets are refused and nothing is forwarded', async (t) => {
  const { tokens, upstream, proxy, send } = await setup(t)
  for (const target of ['http://other.example/', `http://127.0.0.1:${proxy.port}/vivacity/x`, 'https://localhost/vivacity/x', '//other.example/x', '//localhost/vivacity/x', '*']) {
    assertBadRequest(await send(target, target === '*' ? 'OPTIONS' : 'GET'), target)
  }

  // CONNECT would make the proxy a tunnel to any host.
  const connect = await socketExchange(proxy.url, 'CONNECT other.example:443 HTTP/1.1\r\nHost: other.example:443\r\n\r\n')
  assert.ok(connect.closed, 'the connection is closed')
  assert.ok(connect.status === undefined || connect.status >= 400, `CONNECT answered ${connect.status}`)
  assert.ok(!/^HTTP\/1\.1 2/.test(connect.raw), 'no tunnel was opened')

  assert.equal(upstream.requests.length, 0, 'nothing reached the upstream')
  assert.equal(tokens.calls.length, 0, 'no token was requested')
})

test('dot-segments are refused however they are spelled or encoded', async (t) => {
  const { tokens, upstream, send } = await setup(t)
  const targets = [
    '/vivacity/../admin', '/vivacity/..', '/vivacity/a/../../admin', '/vivacity/x/..', '/vivacity/../vivacity/x',
    '/vivacity/%2e%2e/admin', '/vivacity/%2E%2E/admin', '/vivacity/%2e./admin', '/vivacity/.%2E/admin',
    '/vivacity/%252e%252e/admin', '/vivacity/%25252e%25252e/admin',
    '/vivacity/..%2fadmin', '/vivacity/..%2Fadmin', '/vivacity/%2e%2e%2fadmin', '/vivacity/a%2f..%2f..%2fadmin',
    '/vivacity/..\\admin', '/vivacity/..%5cadmin', '/vivacity/%2e%2e%5cadmin', '/vivacity/..%255cadmin',
    '/vivacity/./x', '/vivacity/.', '/vivacity/%2e/x', '/vivacity/x/./y'
  ]
  for (const target of targets) assertBadRequest(await send(target), target)
  assert.deepEqual(upstream.requests.map((r) => r.url), [], 'nothing reached the upstream')
  assert.equal(tokens.calls.length, 0, 'no token was requested')
})

test('"..;" (a dot-segment to Tomcat and other servlet containers) is refused too', async (t) => {
  const { upstream, send } = await setup(t)
  for (const target of ['/vivacity/..;/admin', '/vivacity/%2e%2e;/admin', '/vivacity/..;jsessionid=1/admin']) assertBadRequest(await send(target), target)
  assert.deepEqual(upstream.requests.map((r) => r.url), [], 'nothing reached the upstream')
})

test('malformed percent-encoding is refused with the proxy\'s JSON error', async (t) => {
  const { tokens, upstream, send } = await setup(t)
  // The overlong UTF-8 "." (the old IIS traversal) is not valid UTF-8.
  for (const target of ['/vivacity/%c0%ae%c0%ae/admin', '/vivacity/%zz', '/vivacity/%e2%82']) assertBadRequest(await send(target), target)
  assert.deepEqual(upstream.requests.map((r) => r.url), [], 'nothing reached the upstream')
  assert.equal(tokens.calls.length, 0, 'no token was requested')
})

test('the route prefix must be spelled literally, and empty segments are refused', async (t) => {
  const { tokens, upstream, send } = await setup(t)
  for (const target of ['/%76ivacity/x', '/viv%61city/x', '/vivacity//x', '/vivacity/x//y', '/vivacity///x']) {
    assertBadRequest(await send(target), target)
  }
  // Other spellings are other paths: no route.
  for (const target of ['/VIVACITY/x', '/vivacity%2fx']) assert.equal((await send(target)).status, 404, target)
  assert.deepEqual(upstream.requests.map((r) => r.url), [], 'nothing reached the upstream')
  assert.equal(tokens.calls.length, 0, 'no token was requested')
})

test('an encoded slash inside a segment is legitimate and forwarded verbatim', async (t) => {
  const { upstream, send } = await setup(t)
  for (const target of ['/vivacity/projects/group%2Fproj', '/vivacity/projects/group%2fproj/files/a%2Fb.txt?ref=main', '/vivacity/files/v1.2..3', '/vivacity/.well-known/x']) {
    const res = await send(target)
    assert.equal(res.status, 200, `${target}: ${res.raw.slice(0, 200)}`)
  }
  assert.deepEqual(upstream.requests.map((r) => r.url), [
    '/v3/projects/group%2Fproj', '/v3/projects/group%2fproj/files/a%2Fb.txt?ref=main', '/v3/files/v1.2..3', '/v3/.well-known/x'
  ])
  assert.ok(upstream.requests.every((r) => r.headers.authorization === 'Bearer token-1'))
})

test('segments that only start or end with dots are not dot-segments and are forwarded', async (t) => {
  const { upstream, send } = await setup(t)
  // RFC 3986 §3.3: only "." and ".." are dot-segments; "..." and "..hidden" are ordinary names.
  const targets = ['/vivacity/files/a..', '/vivacity/files/...', '/vivacity/files/..hidden', '/vivacity/a/.../b']
  for (const target of targets) {
    const res = await send(target)
    assert.equal(res.status, 200, `${target}: ${res.body.slice(0, 200)}`)
  }
  assert.deepEqual(upstream.requests.map((r) => r.url), targets.map((p) => p.replace('/vivacity', '/v3')))
})
