import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseConfig } from '../src/config/load.js'
import { createLogger } from '../src/logger.js'
import { startServer } from '../src/server.js'
import { clientCredentialsRoute, LogSink, tokenServer } from './helpers.js'
import { closed, openWebsocket, until, websocketUpstream, wsBase } from './websocket-helpers.js'

test('shutting down with a websocket session open closes it with 1001 on both sides instead of waiting for it', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await websocketUpstream(t)
  const config = parseConfig({ admin: false, shutdownGrace: 10_000, listen: { host: '127.0.0.1', port: 0 }, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }, { env: {} })
  const running = await startServer(config, createLogger({ level: 'info', destination: new LogSink() }))
  let stopped = false
  t.after(async () => { if (!stopped) await running.close() })

  const client = await openWebsocket(`${wsBase(running.url)}/api/live`)
  t.after(() => client.ws.terminate())
  assert.equal(client.status, undefined)
  await until(() => upstream.sockets.length === 1, 5000, 'the upstream connection')
  const clientClosed = closed(client.ws)
  const upstreamClosed = closed(upstream.sockets[0] as NonNullable<typeof upstream.sockets[0]>)

  const started = Date.now()
  await running.close()
  stopped = true
  const ms = Date.now() - started
  assert.ok(ms < 5000, `closed after ${ms} ms: a session never ends by itself, so it is not waited for`)
  assert.equal((await clientClosed).code, 1001)
  assert.equal((await upstreamClosed).code, 1001)
})
