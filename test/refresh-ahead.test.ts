import assert from 'node:assert/strict'
import type { ServerResponse } from 'node:http'
import { test, type TestContext } from 'node:test'
import type { TokenBroker } from '../src/auth/broker.js'
import { clientCredentialsRoute, recordingUpstream, sendJson, startProxy, tokenServer, type TokenCall } from './helpers.js'
import { call, ManualClock, tokenOf, waitFor } from './token-lifecycle-helpers.js'

const SECOND = 1000
/** With the defaults (refreshAhead 0.8, minValidity 30): renewal from 240 s on, usable until 270 s. */
const LIFETIME = 300
/** Just past the renewal point, well before the token stops being usable. */
const PAST_REFRESH_AHEAD = 241 * SECOND

async function setup (t: TestContext, respond: (call: TokenCall, n: number, res: ServerResponse) => void | Promise<void>) {
  const clock = new ManualClock()
  const tokens = await tokenServer(t, respond)
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }, { now: clock.now })
  const broker = proxy.brokers.get('api') as TokenBroker
  const send = async (): Promise<string | undefined> => {
    const res = await call(`${proxy.url}/api/x`)
    assert.equal(res.status, 200)
    return tokenOf(upstream.requests.at(-1))
  }
  const current = (): string | undefined => broker.status().token?.accessToken
  return { clock, tokens, upstream, broker, send, current }
}

test('after refreshAhead of the lifetime, requests are served at once and the token is renewed in the background', async (t) => {
  let releaseRenewal: () => void = () => {}
  const renewalHeld = new Promise<void>((resolve) => { releaseRenewal = resolve })
  const s = await setup(t, async (_call, n, res) => {
    // The renewal is held, so a request that waited for it could not finish.
    if (n > 1) await renewalHeld
    sendJson(res, 200, { access_token: `token-${n}`, expires_in: LIFETIME })
  })
  t.after(releaseRenewal)

  assert.equal(await s.send(), 'token-1')
  s.clock.advance(200 * SECOND)
  assert.equal(await s.send(), 'token-1')
  assert.equal(s.tokens.calls.length, 1, 'no renewal before refreshAhead')

  s.clock.advance(41 * SECOND)
  assert.equal(await s.send(), 'token-1', 'served with the current token while the renewal is pending')
  await waitFor(() => s.tokens.calls.length === 2, 'the background renewal to reach the token server')
  assert.equal(await s.send(), 'token-1', 'still served at once')
  assert.equal(s.tokens.calls.length, 2, 'one renewal, not one per request')

  releaseRenewal()
  await waitFor(() => s.current() === 'token-2', 'the renewed token to be cached')
  assert.equal(await s.send(), 'token-2')
  assert.equal(s.tokens.calls.length, 2)
})

test('the renewal uses the refresh token, and a rotated refresh token replaces the old one', async (t) => {
  const s = await setup(t, (_call, n, res) => {
    sendJson(res, 200, { access_token: `token-${n}`, expires_in: LIFETIME, refresh_token: `rt-${n}` })
  })
  assert.equal(await s.send(), 'token-1')

  s.clock.advance(PAST_REFRESH_AHEAD)
  await s.send()
  await waitFor(() => s.current() === 'token-2', 'the first renewal')
  assert.equal(s.tokens.calls[1]?.form.get('grant_type'), 'refresh_token')
  assert.equal(s.tokens.calls[1]?.form.get('refresh_token'), 'rt-1')

  s.clock.advance(PAST_REFRESH_AHEAD)
  assert.equal(await s.send(), 'token-2')
  await waitFor(() => s.current() === 'token-3', 'the second renewal')
  assert.equal(s.tokens.calls[2]?.form.get('grant_type'), 'refresh_token')
  assert.equal(s.tokens.calls[2]?.form.get('refresh_token'), 'rt-2', 'the rotated refresh token is used')

  s.clock.advance(PAST_REFRESH_AHEAD)
  await s.send()
  await waitFor(() => s.current() === 'token-4', 'the third renewal')
  assert.equal(s.tokens.calls.length, 4)
  assert.deepEqual(s.tokens.calls.map((c) => c.form.get('refresh_token')), [null, 'rt-1', 'rt-2', 'rt-3'], 'a replaced refresh token is never sent again')
  assert.equal(await s.send(), 'token-4')
})

test('a refresh answer without refresh_token keeps the old one (RFC 6749 §6)', async (t) => {
  const s = await setup(t, (_call, n, res) => {
    sendJson(res, 200, { access_token: `token-${n}`, expires_in: LIFETIME, ...(n === 1 ? { refresh_token: 'rt-1' } : {}) })
  })
  await s.send()

  s.clock.advance(PAST_REFRESH_AHEAD)
  await s.send()
  await waitFor(() => s.current() === 'token-2', 'the first renewal')

  s.clock.advance(PAST_REFRESH_AHEAD)
  await s.send()
  await waitFor(() => s.current() === 'token-3', 'the second renewal')
  assert.deepEqual(s.tokens.calls.map((c) => c.form.get('grant_type')), ['client_credentials', 'refresh_token', 'refresh_token'])
  assert.deepEqual(s.tokens.calls.map((c) => c.form.get('refresh_token')), [null, 'rt-1', 'rt-1'])
})

test('a refused refresh falls back to exactly one fresh login', async (t) => {
  const s = await setup(t, (c, n, res) => {
    if (c.form.get('grant_type') === 'refresh_token') {
      sendJson(res, 400, { error: 'invalid_grant', error_description: 'refresh token revoked' })
      return
    }
    sendJson(res, 200, { access_token: `token-${n}`, expires_in: LIFETIME, refresh_token: `rt-${n}` })
  })
  assert.equal(await s.send(), 'token-1')

  s.clock.advance(PAST_REFRESH_AHEAD)
  assert.equal(await s.send(), 'token-1')
  await waitFor(() => s.current() === 'token-3', 'the fallback login')
  assert.deepEqual(s.tokens.calls.map((c) => c.form.get('grant_type')), ['client_credentials', 'refresh_token', 'client_credentials'])

  // The new token is served and nothing keeps asking.
  for (let i = 0; i < 5; i++) assert.equal(await s.send(), 'token-3')
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal(s.tokens.calls.length, 3)
})
