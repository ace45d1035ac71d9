import assert from 'node:assert/strict'
import { test } from 'node:test'
import { REFUSAL_RENEWALS_PER_MINUTE } from '../src/auth/broker.js'
import { clientCredentialsRoute, startProxy, tokenServer } from './helpers.js'
import { openWebsocket, websocketUpstream, wsBase } from './websocket-helpers.js'

/**
 * An upstream that refuses every handshake whatever the token must not turn
 * each handshake into token requests, nor into a second handshake with the
 * very token it just refused: once the refusals of the minute are spent, the
 * refusal goes to the client at once, as for plain requests.
 */
test('a websocket upstream that refuses every handshake: at most 3 token requests a minute, then no retry with the refused token', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await websocketUpstream(t, { verify: () => 401 })
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })

  const sent: string[][] = []
  for (let i = 0; i < 5; i++) {
    const before = upstream.handshakes.length
    const res = await openWebsocket(`${wsBase(proxy.url)}/api/live/${i}`, {}, 10_000)
    assert.equal(res.status, 401, `handshake ${i}: the upstream's refusal is passed on`)
    assert.equal(res.body, 'refused by the test upstream')
    sent.push(upstream.handshakes.slice(before).map((h) => h.headers.authorization ?? ''))
  }
  assert.ok(tokens.calls.length - 1 <= REFUSAL_RENEWALS_PER_MINUTE, `${tokens.calls.length - 1} token requests for refusals`)
  // While refusals still renew the token, a handshake is tried again with a new one.
  assert.equal(sent[0]?.length, 2)
  assert.notEqual(sent[0]?.[0], sent[0]?.[1])
  // Past the cap the token is kept, and sending it again would only be refused again.
  assert.deepEqual(sent.slice(2).map((s) => s.length), [1, 1, 1], `upstream handshakes per client: ${JSON.stringify(sent)}`)
})
