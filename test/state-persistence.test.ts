import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { decodeProtectedHeader } from 'jose'
import { parseConfig } from '../src/config/load.js'
import { clientCredentialsRoute, recordingUpstream, sendJson, startProxy, tokenServer, type TestProxy } from './helpers.js'
import { tempDir } from './cli-helpers.js'
import { settingsTag, tokenFile } from './state-files.js'
import { call, ManualClock, tokenOf } from './token-lifecycle-helpers.js'

const HOUR = 3600_000
/** The secret clientCredentialsRoute configures. */
const CLIENT_SECRET = 'test-client-secret-value'

async function setup (t: TestContext) {
  return { tokens: await tokenServer(t), upstream: await recordingUpstream(t), dir: tempDir(t) }
}

/** Warnings that a stored token file was not used, for one route. */
function ignored (proxy: TestProxy, route: string): Array<Record<string, unknown>> {
  return proxy.logs.lines.filter((l) => l.event === 'token_file_ignored' && l.route === route && l.level === 40)
}

/** Exactly one such warning, giving a reason that matches `why`. */
function ignoredOnce (proxy: TestProxy, route: string, why: RegExp): void {
  const lines = ignored(proxy, route)
  assert.equal(lines.length, 1, JSON.stringify(lines))
  assert.match(String(lines[0]?.reason), why)
}

async function get (proxy: TestProxy, path: string): Promise<void> {
  const res = await call(`${proxy.url}${path}`)
  assert.equal(res.status, 200, `${path}: ${res.text}`)
}

test('a restarted proxy serves with the stored tokens: zero token requests while they are valid', async (t) => {
  const { tokens, upstream, dir } = await setup(t)
  const config = {
    stateDir: dir,
    routes: {
      one: clientCredentialsRoute(upstream.url, tokens.tokenUrl),
      two: clientCredentialsRoute(upstream.url, tokens.tokenUrl, { auth: { type: 'client_credentials', tokenUrl: tokens.tokenUrl, clientId: 'second-client', clientSecret: CLIENT_SECRET } })
    }
  }
  const first = await startProxy(t, config)
  await get(first, '/one/a')
  await get(first, '/two/a')
  assert.equal(tokens.calls.length, 2)
  const tokenOne = tokenOf(upstream.requests[0])
  const tokenTwo = tokenOf(upstream.requests[1])
  await first.close()

  // One file per route, named by the route and its keyed settings hash, and the dir's hash key;
  // nothing else left behind (no temp or lock files); each 0600, without the client secret.
  const [one, two] = parseConfig(config, { env: {} }).routes.map((r) => r.auth)
  assert.deepEqual(readdirSync(dir).sort(), ['.key', `one.${await settingsTag(dir, one)}.token.json`, `two.${await settingsTag(dir, two)}.token.json`])
  for (const file of readdirSync(dir)) {
    assert.equal(statSync(join(dir, file)).mode & 0o777, 0o600, `${file} mode`)
    assert.ok(!readFileSync(join(dir, file), 'utf8').includes(CLIENT_SECRET), `${file} holds the client secret`)
  }

  const second = await startProxy(t, config)
  await get(second, '/one/b')
  await get(second, '/two/b')
  await get(second, '/one/c')
  assert.equal(tokens.calls.length, 2, 'the restarted proxy asked for no token')
  assert.deepEqual(upstream.requests.slice(2).map(tokenOf), [tokenOne, tokenTwo, tokenOne])
  assert.ok(second.logs.lines.some((l) => l.event === 'token_restored' && l.route === 'one'))
  assert.deepEqual(ignored(second, 'one'), [])
})

test('a rotated refresh token survives restarts: the new one is used, the old one never again', async (t) => {
  const clock = new ManualClock()
  const upstream = await recordingUpstream(t)
  const dir = tempDir(t)
  // Rotates on every use and accepts only the latest refresh token, as strict providers do.
  let current = 'rt-seed'
  let issued = 0
  const tokens = await tokenServer(t, (c, _n, res) => {
    if (c.form.get('grant_type') !== 'refresh_token' || c.form.get('refresh_token') !== current) {
      return sendJson(res, 400, { error: 'invalid_grant', error_description: 'refresh token is not current' })
    }
    issued++
    current = `rt-${issued}`
    sendJson(res, 200, { access_token: `access-${issued}`, token_type: 'Bearer', expires_in: 3600, refresh_token: current })
  })
  const config = {
    stateDir: dir,
    routes: { api: { upstream: upstream.url, auth: { type: 'refresh_token', tokenUrl: tokens.tokenUrl, clientId: 'rt-client', clientSecret: CLIENT_SECRET, refreshToken: 'rt-seed' } } }
  }

  const first = await startProxy(t, config, { now: clock.now })
  await get(first, '/api/a')
  await first.close()
  assert.ok(readFileSync(tokenFile(dir, 'api'), 'utf8').includes('rt-1'), 'the rotated refresh token is stored')

  // Past the access token's expiry: the restarted proxy must refresh, with the token it was given last.
  clock.advance(2 * HOUR)
  const second = await startProxy(t, config, { now: clock.now })
  await get(second, '/api/b')
  await second.close()

  clock.advance(2 * HOUR)
  const third = await startProxy(t, config, { now: clock.now })
  await get(third, '/api/c')

  assert.deepEqual(tokens.calls.map((c) => c.form.get('refresh_token')), ['rt-seed', 'rt-1', 'rt-2'])
  assert.deepEqual(upstream.requests.map(tokenOf), ['access-1', 'access-2', 'access-3'])
})

test('a corrupt token file is ignored with a warning and a fresh token obtained', async (t) => {
  const { tokens, upstream, dir } = await setup(t)
  const config = { stateDir: dir, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }
  const file = join(dir, `api.${await settingsTag(dir, parseConfig(config, { env: {} }).routes[0]?.auth)}.token.json`)
  writeFileSync(file, '{"format":1,"route":"api","tok', { mode: 0o600 })
  const proxy = await startProxy(t, config)
  ignoredOnce(proxy, 'api', /corrupt/)
  await get(proxy, '/api/a')
  assert.equal(tokens.calls.length, 1)
  assert.equal(tokenOf(upstream.requests[0]), 'token-1')
  // The fresh token replaced the corrupt file.
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).token.accessToken, 'token-1')
})

test('a token file written for another auth config is ignored with a warning', async (t) => {
  const { tokens, upstream, dir } = await setup(t)
  const first = await startProxy(t, { stateDir: dir, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })
  await get(first, '/api/a')
  await first.close()

  const auth = { type: 'client_credentials', tokenUrl: tokens.tokenUrl, clientId: 'another-client', clientSecret: CLIENT_SECRET }
  const second = await startProxy(t, { stateDir: dir, routes: { api: { upstream: upstream.url, auth } } })
  ignoredOnce(second, 'api', /another auth config/)
  await get(second, '/api/b')
  assert.equal(tokens.calls.length, 2)
  assert.equal(tokens.calls[1]?.headers.authorization, `Basic ${Buffer.from(`another-client:${CLIENT_SECRET}`).toString('base64')}`)
  assert.deepEqual(upstream.requests.map(tokenOf), ['token-1', 'token-2'])
})

test('an expired stored token without a refresh token is ignored with a warning', async (t) => {
  const clock = new ManualClock()
  const { tokens, upstream, dir } = await setup(t)
  const config = { stateDir: dir, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }
  const first = await startProxy(t, config, { now: clock.now })
  await get(first, '/api/a')
  await first.close()

  clock.advance(2 * HOUR)
  const second = await startProxy(t, config, { now: clock.now })
  ignoredOnce(second, 'api', /expired/)
  await get(second, '/api/b')
  assert.equal(tokens.calls.length, 2)
  assert.deepEqual(upstream.requests.map(tokenOf), ['token-1', 'token-2'])
})

test('with stateKey the file is a JWE that restores with the same key and is ignored with another', async (t) => {
  const { tokens, upstream, dir } = await setup(t)
  const routes = { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) }
  const first = await startProxy(t, { stateDir: dir, stateKey: 'state-key-one-0123456789', routes })
  await get(first, '/api/a')
  await first.close()

  const file = tokenFile(dir, 'api')
  const text = readFileSync(file, 'utf8').trim()
  const parts = text.split('.')
  assert.equal(parts.length, 5, 'JWE compact serialization')
  // dir + A256GCM: no encrypted key, a 96-bit IV and a 128-bit tag.
  assert.deepEqual(decodeProtectedHeader(text), { alg: 'dir', enc: 'A256GCM' })
  assert.equal(parts[1], '')
  for (const plain of ['token-1', CLIENT_SECRET, 'accessToken', 'test-client']) assert.ok(!text.includes(plain), `"${plain}" in the encrypted file`)
  assert.equal(statSync(file).mode & 0o777, 0o600)

  const second = await startProxy(t, { stateDir: dir, stateKey: 'state-key-one-0123456789', routes })
  await get(second, '/api/b')
  assert.equal(tokens.calls.length, 1, 'restored with the same key')
  assert.deepEqual(ignored(second, 'api'), [])
  await second.close()

  const third = await startProxy(t, { stateDir: dir, stateKey: 'state-key-two-9876543210', routes })
  ignoredOnce(third, 'api', /another key/)
  await get(third, '/api/c')
  assert.equal(tokens.calls.length, 2, 'another key cannot read it: a fresh token')
  assert.deepEqual(upstream.requests.map(tokenOf), ['token-1', 'token-1', 'token-2'])
})
