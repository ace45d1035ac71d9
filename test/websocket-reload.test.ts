import assert from 'node:assert/strict'
import { test } from 'node:test'
import type WebSocket from 'ws'
import { parseConfig } from '../src/config/load.js'
import { createLogger } from '../src/logger.js'
import { startServer } from '../src/server.js'
import { clientCredentialsRoute, LogSink, recordingUpstream, tokenServer } from './helpers.js'
import { closed, openWebsocket, until, websocketUpstream, wsBase, type Opened } from './websocket-helpers.js'

const WAIT_MS = 5000

/** Sends `text` and waits for the upstream's echo of it; fails at once if the session closes instead. */
async function echoed (client: Opened, text: string): Promise<void> {
  const before = client.messages.length
  const back = (): boolean => client.messages.slice(before).some((m) => m.toString('utf8') === text)
  client.ws.send(text)
  await until(() => back() || client.ws.readyState !== client.ws.OPEN, WAIT_MS, `the echo of ${text}`)
  assert.ok(back(), `the session closed instead of echoing ${text}`)
}

test('a reload that changes another route leaves websocket sessions open; the shutdown closes them with 1001, those opened before the reload too', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await websocketUpstream(t, { connected: (socket) => socket.on('message', (data) => socket.send(data)) })
  const plain = await recordingUpstream(t)
  const input = (otherClient: string): Record<string, unknown> => ({
    admin: false,
    shutdownGrace: 10_000,
    listen: { host: '127.0.0.1', port: 0 },
    routes: {
      w: clientCredentialsRoute(upstream.url, tokens.tokenUrl),
      other: { upstream: plain.url, auth: { type: 'client_credentials', tokenUrl: tokens.tokenUrl, clientId: otherClient, clientSecret: 'other-client-secret' } }
    }
  })
  const logs = new LogSink()
  const running = await startServer(parseConfig(input('other-1'), { env: {} }), createLogger({ level: 'info', destination: logs }))
  let stopped = false
  t.after(async () => { if (!stopped) await running.close() })

  const before = await openWebsocket(`${wsBase(running.url)}/w/live`)
  t.after(() => before.ws.terminate())
  assert.equal(before.status, undefined, before.body)
  await echoed(before, 'before the reload')
  let closedEarly: number | undefined
  before.ws.once('close', (code) => { closedEarly = code })

  await running.reload(parseConfig(input('other-2'), { env: {} }))
  const reloaded = logs.lines.find((l) => l.event === 'reloaded')
  assert.deepEqual([reloaded?.changed, reloaded?.kept], [['other'], ['w']])

  // The session opened on the app the reload replaced goes on as before.
  await echoed(before, 'after the reload')
  assert.equal(closedEarly, undefined, 'the reload closed the session')
  assert.equal(before.ws.readyState, before.ws.OPEN)

  const after = await openWebsocket(`${wsBase(running.url)}/w/live`)
  t.after(() => after.ws.terminate())
  assert.equal(after.status, undefined, after.body)
  await echoed(after, 'opened after the reload')
  await until(() => upstream.sockets.length === 2, WAIT_MS, 'both upstream connections')

  const sides: WebSocket[] = [before.ws, after.ws, ...upstream.sockets]
  const closes = sides.map((ws) => closed(ws, WAIT_MS))
  const started = Date.now()
  await running.close()
  stopped = true
  const ms = Date.now() - started
  assert.ok(ms < WAIT_MS, `closed after ${ms} ms: no session is waited for, the one of the replaced app included`)
  assert.deepEqual((await Promise.all(closes)).map((c) => c.code), [1001, 1001, 1001, 1001])
})
