import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clientCredentialsRoute, startProxy, tokenServer } from './helpers.js'
import { closed, openWebsocket, until, websocketUpstream, wsBase } from './websocket-helpers.js'

test('a websocket session ends with one log line (route, path without query, ms, bytes each way, close code) and a metrics count', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await websocketUpstream(t, {
    connected: (socket) => socket.on('message', (data) => socket.send(`echo:${String(data)}`))
  })
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })

  const client = await openWebsocket(`${wsBase(proxy.url)}/api/stream?key=query-secret-7d1`, { headers: { authorization: 'Bearer client-own-token' } })
  t.after(() => client.ws.terminate())
  assert.equal(client.status, undefined)
  client.ws.send('hello')
  client.ws.send(Buffer.from('abc'))
  await until(() => client.messages.length === 2, 5000, 'both echoes')
  const upstreamClosed = closed(upstream.sockets[0] as NonNullable<typeof upstream.sockets[0]>)
  client.ws.close(4001, 'done')
  assert.deepEqual(await upstreamClosed, { code: 4001, reason: 'done' }, 'the close frame is passed on')

  await until(() => proxy.logs.lines.some((l) => l.msg === 'websocket'), 5000, 'the session line')
  const lines = proxy.logs.lines.filter((l) => l.msg === 'websocket' || l.msg === 'request')
  assert.equal(lines.length, 1, 'one line for the whole session')
  const line = lines[0] as Record<string, unknown>
  assert.equal(line.route, 'api')
  assert.equal(line.method, 'GET')
  assert.equal(line.path, '/api/stream')
  assert.equal(line.status, 101)
  assert.equal(typeof line.ms, 'number')
  assert.equal(line.bytesToUpstream, 'hello'.length + 'abc'.length)
  assert.equal(line.bytesToClient, 'echo:hello'.length + 'echo:abc'.length)
  assert.equal(line.closeCode, 4001)
  assert.equal(line.closedBy, 'client')
  const text = proxy.logs.text()
  for (const secret of ['query-secret-7d1', 'client-own-token', 'token-1']) assert.ok(!text.includes(secret), `no ${secret} in the logs`)

  const { text: metrics } = await proxy.metrics.text()
  assert.match(metrics, /^bearer_proxy_websocket_sessions_total\{route="api"\} 1$/m)
})

test('an upstream that closes the session: its close frame reaches the client, and the line says who closed', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await websocketUpstream(t)
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })

  const client = await openWebsocket(`${wsBase(proxy.url)}/api/stream`)
  t.after(() => client.ws.terminate())
  await until(() => upstream.sockets.length === 1, 5000, 'the upstream connection')
  const clientClosed = closed(client.ws)
  upstream.sockets[0]?.close(4002, 'maintenance')
  assert.deepEqual(await clientClosed, { code: 4002, reason: 'maintenance' })

  await until(() => proxy.logs.lines.some((l) => l.msg === 'websocket'), 5000, 'the session line')
  const line = proxy.logs.lines.find((l) => l.msg === 'websocket')
  assert.equal(line?.closeCode, 4002)
  assert.equal(line?.closedBy, 'upstream')
})
