import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseConfig } from '../src/config/load.js'
import { tempDir } from './cli-helpers.js'
import { recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { settingsTag } from './state-files.js'
import { call, ManualClock, tokenOf } from './token-lifecycle-helpers.js'

/** The route's token timeout: also the longest wait for another process's renewal lock. */
const TIMEOUT_MS = 500

/** Another process holds the route's lock (alive: its lease runs a minute); the lock's name carries the route's settings hash. */
async function holdLock (dir: string, config: { routes: Record<string, unknown> }): Promise<() => void> {
  const file = join(dir, `api.${await settingsTag(dir, parseConfig(config, { env: {} }).routes[0]?.auth)}.token.lock`)
  writeFileSync(file, JSON.stringify({ owner: 'other-process', pid: 1, expiresAt: Date.now() + 60_000 }), { mode: 0o600 })
  return () => rmSync(file, { force: true })
}

function rotatingServer (t: Parameters<typeof tokenServer>[0]) {
  let latest = 'rt-seed'
  return tokenServer(t, (c, n, res) => {
    if (c.form.get('refresh_token') !== latest) return sendJson(res, 400, { error: 'invalid_grant' })
    latest = `rt-${n}`
    sendJson(res, 200, { access_token: `access-${n}`, token_type: 'Bearer', expires_in: 3600, refresh_token: latest })
  })
}

function routes (upstream: string, tokenUrl: string) {
  return { api: { upstream, auth: { type: 'refresh_token', tokenUrl, clientId: 'c', clientSecret: 'client-secret-value', refreshToken: 'rt-seed', timeout: TIMEOUT_MS } } }
}

test('with no token and the renewal lock held elsewhere, a request waits at most the token timeout, then gets 503 TOKEN_UNAVAILABLE without presenting the refresh token', async (t) => {
  const tokens = await rotatingServer(t)
  const upstream = await recordingUpstream(t)
  const dir = tempDir(t)
  const config = { stateDir: dir, routes: routes(upstream.url, tokens.tokenUrl) }
  const release = await holdLock(dir, config)
  const proxy = await startProxy(t, config)

  const started = Date.now()
  const res = await call(`${proxy.url}/api/a`)
  const waited = Date.now() - started
  assert.equal(res.status, 503, res.text)
  assert.equal(res.json.error.code, 'TOKEN_UNAVAILABLE')
  assert.ok(res.headers.get('retry-after') !== null)
  assert.ok(waited >= TIMEOUT_MS - 10, `answered after ${waited} ms`)
  // Generous for a busy machine, but far below the lock's lease.
  assert.ok(waited < 8000, `answered after ${waited} ms`)
  assert.equal(tokens.calls.length, 0, 'the refresh token was not presented without the lock')
  assert.equal(upstream.requests.length, 0)

  // Once the other process lets go, the next renewal (after the backoff) goes ahead.
  release()
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const later = await call(`${proxy.url}/api/b`)
  assert.equal(later.status, 200, later.text)
  assert.deepEqual(tokens.calls.map((c) => c.form.get('refresh_token')), ['rt-seed'])
})

test('with the renewal lock held elsewhere, a token that has not expired keeps being served', async (t) => {
  const clock = new ManualClock()
  const tokens = await rotatingServer(t)
  const upstream = await recordingUpstream(t)
  const dir = tempDir(t)
  const config = { stateDir: dir, routes: routes(upstream.url, tokens.tokenUrl) }
  const proxy = await startProxy(t, config, { now: clock.now })
  assert.equal((await call(`${proxy.url}/api/a`)).status, 200)
  await holdLock(dir, config)
  // Past the refresh-ahead point (80% of the hour), still usable: due for renewal, which waits on the lock.
  clock.advance(3600_000 * 0.9)
  const res = await call(`${proxy.url}/api/b`)
  assert.equal(res.status, 200, res.text)
  // The background renewal gives up after the token timeout; the token keeps being served meanwhile and after.
  await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS * 3))
  const after = await call(`${proxy.url}/api/c`)
  assert.equal(after.status, 200, after.text)
  assert.deepEqual(upstream.requests.map(tokenOf), ['access-1', 'access-1', 'access-1'])
  assert.equal(tokens.calls.length, 1, 'no refresh without the lock')
})
