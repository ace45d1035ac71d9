import assert from 'node:assert/strict'
import { test } from 'node:test'
import type WebSocket from 'ws'
import { clientCredentialsRoute, startProxy, tokenServer } from './helpers.js'
import { openWebsocket, settled, until, websocketUpstream, wsBase } from './websocket-helpers.js'

const MIB = 1024 * 1024
const MESSAGES = 64
/**
 * How many 1 MiB messages may leave a sender whose reader stopped: loopback
 * socket buffers on both legs (a few MiB each under Linux autotuning), the
 * proxy's high-water mark (1 MiB) and a message or two in flight. Without
 * backpressure all 64 leave it, into the proxy's memory.
 */
const MOST_IN_FLIGHT = 16

function message (i: number): Buffer {
  return Buffer.alloc(MIB, i)
}

/**
 * Sends the 64 messages the way a careful sender does: each once the one
 * before has been written to the socket. Returns how many were written so far.
 */
function push (ws: WebSocket): () => number {
  let written = 0
  const next = (err?: Error): void => {
    if (err !== undefined || written === MESSAGES) return
    ws.send(message(written), (failed) => {
      if (failed === undefined || failed === null) written++
      next(failed ?? undefined)
    })
  }
  next()
  return () => written
}

/** Whether `received` holds the 64 messages in order, intact. */
function intact (received: Buffer[]): boolean {
  return received.length === MESSAGES && received.every((m, i) => m.length === MIB && m[0] === i && m[MIB - 1] === i)
}

test('an upstream pushing to a client that stopped reading is held back by the proxy, not buffered in it', async (t) => {
  const tokens = await tokenServer(t)
  let written: (() => number) | undefined
  const upstream = await websocketUpstream(t, {
    connected: (socket) => { written = push(socket) }
  })
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })

  const client = await openWebsocket(`${wsBase(proxy.url)}/api/feed`)
  // The client stops reading as soon as it is connected.
  client.ws.pause()
  t.after(() => client.ws.terminate())
  assert.equal(client.status, undefined)
  await until(() => written !== undefined, 5000, 'the upstream connection')
  const upstreamWritten = written as () => number

  // What the upstream could write stops growing while the client reads nothing.
  const sent = await settled(upstreamWritten, 2000, 20_000)
  assert.ok(sent <= MOST_IN_FLIGHT, `the upstream wrote ${sent} MiB to a client that reads nothing`)

  // Once the client reads again, every message arrives, in order and whole.
  client.ws.resume()
  await until(() => client.messages.length >= MESSAGES, 30_000, 'all messages after resuming')
  assert.ok(intact(client.messages), 'messages arrive whole and in order')
  client.ws.close()
})

test('a client pushing to an upstream that stopped reading is held back by the proxy, not buffered in it', async (t) => {
  const tokens = await tokenServer(t)
  const received: Buffer[] = []
  const upstream = await websocketUpstream(t, {
    connected: (socket) => {
      socket.on('message', (data) => received.push(data as Buffer))
      // The upstream stops reading as soon as it is connected.
      socket.pause()
    }
  })
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })

  const client = await openWebsocket(`${wsBase(proxy.url)}/api/upload`)
  t.after(() => client.ws.terminate())
  assert.equal(client.status, undefined)
  await until(() => upstream.sockets.length === 1, 5000, 'the upstream connection')
  const clientWritten = push(client.ws)

  const sent = await settled(clientWritten, 2000, 20_000)
  assert.ok(sent <= MOST_IN_FLIGHT, `the client wrote ${sent} MiB to an upstream that reads nothing`)

  upstream.sockets[0]?.resume()
  await until(() => received.length >= MESSAGES, 30_000, 'all messages after resuming')
  assert.ok(intact(received), 'messages arrive whole and in order')
  client.ws.close()
})
