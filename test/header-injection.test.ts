import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { clientCredentialsRoute, listen, recordingUpstream, startProxy, tokenServer } from './helpers.js'
import { headerNames, rawRequest } from './proxy-http-helpers.js'

/** Every value a header has in a rawHeaders array. */
function rawValues (rawHeaders: string[], name: string): string[] {
  const values: string[] = []
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === name) values.push(rawHeaders[i + 1] as string)
  }
  return values
}

test("the client's Authorization is replaced by the route's credential, even when sent twice", async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })

  const res = await rawRequest(proxy.url, {
    path: '/api/items',
    headers: { authorization: ['Bearer client-own-token-1', 'Basic Y2xpZW50OnNlY3JldA=='], accept: 'application/json' }
  })
  assert.equal(res.status, 200)
  const got = upstream.requests[0]
  assert.ok(got !== undefined)
  assert.deepEqual(rawValues(got.rawHeaders, 'authorization'), ['Bearer token-1'])
  const all = got.rawHeaders.join('\n')
  assert.ok(!all.includes('client-own-token-1') && !all.includes('Y2xpZW50OnNlY3JldA=='), 'no trace of the client credential')
  // Ordinary headers still go through.
  assert.equal(got.headers.accept, 'application/json')
})

test('x-proxy-key is not forwarded', async (t) => {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    security: { clientKey: 'local-client-key-42' },
    routes: { api: { upstream: upstream.url, auth: { type: 'static', token: 'route-key-1234' } } }
  })

  const res = await rawRequest(proxy.url, { path: '/api/x', headers: { 'x-proxy-key': 'local-client-key-42' } })
  assert.equal(res.status, 200)
  const got = upstream.requests[0]
  assert.ok(got !== undefined)
  assert.ok(!headerNames(got.rawHeaders).includes('x-proxy-key'))
  assert.ok(!got.rawHeaders.join('\n').includes('local-client-key-42'))
  assert.deepEqual(rawValues(got.rawHeaders, 'authorization'), ['Bearer route-key-1234'])
})

test('hop-by-hop and forwarding request headers are not forwarded', async (t) => {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, auth: { type: 'static', token: 'route-key-1234' } } } })

  const headers = {
    connection: 'x-named-hop, keep-alive',
    'x-named-hop': 'named-hop-value',
    'keep-alive': 'timeout=99',
    te: 'trailers',
    trailer: 'x-late',
    upgrade: 'h2c',
    'proxy-authorization': 'Basic cHJveHk6cGFzcw==',
    'proxy-connection': 'keep-alive',
    'x-forwarded-for': '203.0.113.9',
    'x-forwarded-host': 'forged.example',
    'x-forwarded-proto': 'gopher',
    forwarded: 'for=198.51.100.7;host=forged2.example;proto=gopher',
    'x-kept': 'kept-value'
  }
  // A chunked body: node:http refuses to send Trailer otherwise.
  const send = async (base: string, path: string) => await rawRequest(base, { method: 'POST', path, headers, body: Readable.from([Buffer.from('chunked body')]) })

  // Control: node:http really sends every one of them.
  assert.equal((await send(upstream.url, '/control')).status, 200)
  const control = headerNames(upstream.requests[0]?.rawHeaders ?? [])
  for (const name of Object.keys(headers)) assert.ok(control.includes(name), `control: client sends ${name}`)

  const res = await send(proxy.url, '/api/x')
  assert.equal(res.status, 200)
  const got = upstream.requests[1]
  assert.ok(got !== undefined)
  const names = headerNames(got.rawHeaders)
  for (const name of ['x-named-hop', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-connection', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded']) {
    assert.ok(!names.includes(name), `${name} reached the upstream`)
  }
  // The proxy may state its own Connection and X-Forwarded-For; the client's values must not get through.
  const all = got.rawHeaders.join('\n')
  for (const value of ['named-hop-value', 'x-named-hop', 'timeout=99', 'cHJveHk6cGFzcw==', '203.0.113.9', 'forged.example', 'forged2.example', '198.51.100.7', 'gopher', 'h2c']) {
    assert.ok(!all.includes(value), `client value ${value} reached the upstream`)
  }
  assert.equal(got.headers['x-kept'], 'kept-value')
  assert.equal(got.body.toString(), 'chunked body')
})

test('hop-by-hop response headers are not passed to the client, ordinary ones are', async (t) => {
  const upstream = await recordingUpstream(t, (_req, res) => {
    res.writeHead(200, [
      ['content-type', 'text/plain'],
      ['connection', 'x-upstream-hop'],
      ['x-upstream-hop', 'upstream-hop-value'],
      ['keep-alive', 'timeout=123, max=7'],
      ['proxy-authenticate', 'Basic realm="upstream-proxy"'],
      ['trailer', 'x-checksum'],
      ['upgrade', 'h2c'],
      ['x-request-id', 'req-abc-123'],
      ['set-cookie', 'a=1; Path=/'],
      ['set-cookie', 'b=2; Path=/'],
      ['cache-control', 'no-store']
    ].flat())
    res.end('hello')
  })
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, auth: { type: 'static', token: 'route-key-1234' } } } })

  // Control: the upstream really sends them, so their absence below is the proxy's doing.
  const direct = await rawRequest(upstream.url, { path: '/x' })
  for (const name of ['x-upstream-hop', 'keep-alive', 'proxy-authenticate', 'trailer', 'upgrade']) {
    assert.ok(headerNames(direct.rawHeaders).includes(name), `control: upstream sends ${name}`)
  }

  const res = await rawRequest(proxy.url, { path: '/api/x' })
  assert.equal(res.status, 200)
  assert.equal(res.body.toString(), 'hello')
  const names = headerNames(res.rawHeaders)
  for (const name of ['x-upstream-hop', 'proxy-authenticate', 'trailer', 'upgrade']) {
    assert.ok(!names.includes(name), `${name} reached the client`)
  }
  const all = res.rawHeaders.join('\n')
  for (const value of ['upstream-hop-value', 'x-upstream-hop', 'timeout=123', 'upstream-proxy', 'x-checksum', 'h2c']) {
    assert.ok(!all.includes(value), `upstream value ${value} reached the client`)
  }
  assert.equal(res.headers['x-request-id'], 'req-abc-123')
  // Both lines, each scoped under the route's prefix (cookie-isolation.test.ts has the rules).
  assert.deepEqual(res.headers['set-cookie'], ['a=1; Path=/api', 'b=2; Path=/api'])
  assert.equal(res.headers['cache-control'], 'no-store')
  assert.equal(res.headers['content-type'], 'text/plain')
})

test('the static scheme sets its header and scheme word', async (t) => {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    routes: {
      plain: { upstream: upstream.url, auth: { type: 'static', token: 'KEY-default-1' } },
      raw: { upstream: upstream.url, auth: { type: 'static', token: 'KEY-raw-2', header: 'X-Api-Key', scheme: '' } },
      word: { upstream: upstream.url, auth: { type: 'static', token: 'KEY-word-3', scheme: 'Token' } }
    }
  })

  for (const path of ['/plain/a', '/raw/a', '/word/a']) {
    const res = await rawRequest(proxy.url, { path, headers: { authorization: 'Bearer client-own', 'x-api-key': 'client-own-key' } })
    assert.equal(res.status, 200, path)
  }
  const [plain, raw, word] = upstream.requests
  assert.ok(plain !== undefined && raw !== undefined && word !== undefined)

  assert.deepEqual(rawValues(plain.rawHeaders, 'authorization'), ['Bearer KEY-default-1'])
  // Another header than authorization: the client's Authorization is still dropped, and its own copy of the header replaced.
  assert.deepEqual(rawValues(raw.rawHeaders, 'x-api-key'), ['KEY-raw-2'])
  assert.deepEqual(rawValues(raw.rawHeaders, 'authorization'), [])
  assert.deepEqual(rawValues(word.rawHeaders, 'authorization'), ['Token KEY-word-3'])
})

test('an upstream answer with several Connection lines: every header they name is dropped, the answer passed on', async (t) => {
  const upstream = await listen(t, (req: IncomingMessage) => {
    req.socket.end('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: x-hop\r\nx-hop: hop-value\r\nx-kept: yes\r\ncontent-length: 2\r\n\r\nok', 'latin1')
  })
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, auth: { type: 'static', token: 'route-key-1234' } } } })
  const res = await rawRequest(proxy.url, { path: '/api/x' })
  assert.equal(res.status, 200, res.body.toString())
  assert.equal(res.body.toString(), 'ok')
  assert.equal(res.headers['x-kept'], 'yes')
  assert.ok(!headerNames(res.rawHeaders).includes('x-hop'), 'a header a Connection line names reached the client')
})
