import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clientCredentialsRoute, startProxy, tokenServer } from './helpers.js'
import { closed, openWebsocket, until, websocketUpstream, wsBase } from './websocket-helpers.js'

/** One byte over the proxy's 16 MiB message limit: held whole in memory before it could be passed on. */
const TOO_BIG = 16 * 1024 * 1024 + 1

test('a websocket message over 16 MiB from the upstream is not relayed: 1009 to the upstream, 1014 to the client', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await websocketUpstream(t)
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })

  const client = await openWebsocket(`${wsBase(proxy.url)}/api/feed`)
  t.after(() => client.ws.terminate())
  await until(() => upstream.sockets.length === 1, 5000, 'the upstream connection')
  const sender = upstream.sockets[0] as NonNullable<typeof upstream.sockets[0]>
  const upstreamClosed = closed(sender, 10_000)
  const clientClosed = closed(client.ws, 10_000)
  sender.send(Buffer.alloc(TOO_BIG))

  assert.equal((await upstreamClosed).code, 1009, 'message too big')
  assert.equal((await clientClosed).code, 1014, 'bad gateway')
  assert.equal(client.messages.length, 0)
})

test('a websocket message over 16 MiB from the client is not relayed: 1009 to the client, 1001 to the upstream', async (t) => {
  const tokens = await tokenServer(t)
  const received: number[] = []
  const upstream = await websocketUpstream(t, { connected: (socket) => socket.on('message', (data) => received.push((data as Buffer).length)) })
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })

  const client = await openWebsocket(`${wsBase(proxy.url)}/api/feed`)
  t.after(() => client.ws.terminate())
  await until(() => upstream.sockets.length === 1, 5000, 'the upstream connection')
  const upstreamClosed = closed(upstream.sockets[0] as NonNullable<typeof upstream.sockets[0]>, 10_000)
  const clientClosed = closed(client.ws, 10_000)
  client.ws.send(Buffer.alloc(TOO_BIG))

  assert.equal((await clientClosed).code, 1009, 'message too big')
  assert.equal((await upstreamClosed).code, 1001, 'going away')
  assert.deepEqual(received, [])
})
