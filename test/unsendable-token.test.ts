/* eslint-disable no-template-curly-in-string -- config secret references are literal "${...}" text */
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { test, type TestContext } from 'node:test'
import type { TokenBroker } from '../src/auth/broker.js'
import { parseConfig } from '../src/config/load.js'
import { ConfigError } from '../src/config-error.js'
import { tempDir } from './cli-helpers.js'
import { clientCredentialsRoute, recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { tokenFile, tokenFiles } from './state-files.js'
import { call, ManualClock, tokenOf, waitFor } from './token-lifecycle-helpers.js'

const SECOND = 1000
/** Stands for the token's value: it must show nowhere. */
const CANARY = 'UNSENDABLE-TOKEN-CANARY'

/** Tokens Node would refuse to put in a header. */
const UNSENDABLE: Array<[string, string]> = [
  ['CR LF (a header injected after it)', `${CANARY}\r\nX-Injected: yes`],
  ['a bare LF', `${CANARY}\nmore`],
  ['a bare CR', `${CANARY}\rmore`],
  ['NUL', `${CANARY}\u0000more`],
  ['another control character', `${CANARY}\u0007more`],
  ['DEL', `${CANARY}\u007fmore`],
  ['a character beyond Latin-1', `${CANARY}\u20acmore`]
]

async function setup (t: TestContext, accessToken: (n: number) => string, options: { stateDir?: string, refresh?: boolean } = {}) {
  const clock = new ManualClock()
  const tokens = await tokenServer(t, (_call, n, res) => sendJson(res, 200, { access_token: accessToken(n), token_type: 'Bearer', expires_in: 300, ...(options.refresh === true ? { refresh_token: `rt-${n}` } : {}) }))
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    ...(options.stateDir === undefined ? {} : { stateDir: options.stateDir }),
    routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) }
  }, { now: clock.now })
  return { clock, tokens, upstream, proxy, broker: proxy.brokers.get('api') as TokenBroker }
}

for (const [what, bad] of UNSENDABLE) {
  test(`a token with ${what} counts as refused by the token endpoint: 502 TOKEN_REJECTED, never cached or stored`, async (t) => {
    const dir = tempDir(t)
    const s = await setup(t, (n) => n === 1 ? bad : `token-${n}`, { stateDir: dir })
    const res = await call(`${s.proxy.url}/api/x`)
    assert.equal(res.status, 502, res.text)
    assert.equal(res.json?.error?.code, 'TOKEN_REJECTED')
    assert.equal(res.json.error.route, 'api')
    assert.match(res.json.error.message, /cannot be sent in an HTTP header/)
    assert.equal(s.upstream.requests.length, 0, 'nothing reached the upstream')
    assert.equal(s.broker.status().token, undefined, 'not cached')
    assert.deepEqual(tokenFiles(dir, 'api'), [], 'not stored')
    assert.ok(!res.text.includes(CANARY), 'the token is not in the answer')
    assert.ok(!s.proxy.logs.text().includes(CANARY), 'the token is not in the logs')

    // Backed off like any refusal; once past it, a good token is obtained and used.
    assert.equal((await call(`${s.proxy.url}/api/x`)).status, 502)
    assert.equal(s.tokens.calls.length, 1, 'no token request during the backoff')
    s.clock.advance(5 * SECOND)
    const next = await call(`${s.proxy.url}/api/x`)
    assert.equal(next.status, 200, next.text)
    assert.equal(tokenOf(s.upstream.requests.at(-1)), 'token-2')
  })
}

test('a refresh answer with a token that cannot be sent counts as a refused refresh: one fresh login', async (t) => {
  const s = await setup(t, (n) => n === 2 ? `${CANARY}\r\nX-Injected: yes` : `token-${n}`, { refresh: true })
  assert.equal((await call(`${s.proxy.url}/api/x`)).status, 200)
  // Past the renewal point (240 s of 300 s): renewed in the background by refresh token.
  s.clock.advance(241 * SECOND)
  assert.equal((await call(`${s.proxy.url}/api/x`)).status, 200)
  await waitFor(() => s.broker.status().token?.accessToken === 'token-3', 'the fresh login after the refused refresh')
  assert.deepEqual(s.tokens.calls.map((c) => c.form.get('grant_type')), ['client_credentials', 'refresh_token', 'client_credentials'])
  assert.equal((await call(`${s.proxy.url}/api/x`)).status, 200)
  assert.deepEqual(s.upstream.requests.map(tokenOf), ['token-1', 'token-1', 'token-3'])
  assert.ok(!s.proxy.logs.text().includes(CANARY))
})

test('a static token with a line break is a config error naming its key, without its value', () => {
  for (const input of [
    { routes: { api: { upstream: 'http://127.0.0.1:9/', auth: { type: 'static', token: `${CANARY}\r\nX-Injected: yes` } } } },
    { routes: { api: { upstream: 'http://127.0.0.1:9/', auth: { type: 'static', token: '${env:API_KEY}' } } } }
  ]) {
    let caught: unknown
    try {
      parseConfig(input, { env: { API_KEY: `${CANARY}\nmore` } })
    } catch (err) {
      caught = err
    }
    assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`)
    assert.equal(caught.issues.length, 1)
    assert.match(caught.issues[0] as string, /^routes\.api\.auth\.token: must not contain control characters or line breaks/)
    assert.ok(!caught.message.includes(CANARY), 'the value is not in the message')
  }
})

test('a stored token that cannot be sent is ignored and a fresh one obtained', async (t) => {
  const dir = tempDir(t)
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const config = { stateDir: dir, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }
  const first = await startProxy(t, config)
  assert.equal((await call(`${first.url}/api/x`)).status, 200)
  await first.close()
  // A tampered file: the same route and auth config, a token with a header after it.
  const file = tokenFile(dir, 'api')
  const stored = JSON.parse(readFileSync(file, 'utf8'))
  stored.token.accessToken = `${CANARY}\r\nX-Injected: yes`
  writeFileSync(file, JSON.stringify(stored), { mode: 0o600 })

  const second = await startProxy(t, config)
  const res = await call(`${second.url}/api/x`)
  assert.equal(res.status, 200, res.text)
  assert.deepEqual(upstream.requests.map(tokenOf), ['token-1', 'token-2'])
  assert.ok(second.logs.lines.some((l) => l.event === 'token_file_ignored'))
  assert.ok(!second.logs.text().includes(CANARY))
})
