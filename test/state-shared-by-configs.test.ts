import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { FileTokenStore } from '../src/auth/file-token-store.js'
import { parseConfig } from '../src/config/load.js'
import { tempDir } from './cli-helpers.js'
import { recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { tokenFiles } from './state-files.js'
import { call, ManualClock, tokenOf } from './token-lifecycle-helpers.js'

const HOUR = 3600_000

function store (dir: string, refreshToken: string): FileTokenStore {
  return new FileTokenStore({ dir, settings: new Map([['api', { type: 'refresh_token', refreshToken }]]), logger: pino({ level: 'silent' }) })
}

test('two configs giving route "api" other credentials on one stateDir each keep their own rotated refresh token', async (t) => {
  const dir = tempDir(t)
  const prod = store(dir, 'RT-prod')
  const dev = store(dir, 'RT-dev')
  const now = Date.now()
  await prod.save('api', { accessToken: 'AT-prod', obtainedAt: now, expiresAt: now + HOUR, refreshToken: 'RT-prod-rotated-2' })
  await dev.save('api', { accessToken: 'AT-dev', obtainedAt: now, expiresAt: now + HOUR, refreshToken: 'RT-dev-rotated-2' })
  assert.equal(tokenFiles(dir, 'api').length, 2, 'one file each')
  assert.equal((await store(dir, 'RT-prod').load('api'))?.refreshToken, 'RT-prod-rotated-2', 'prod after a restart')
  assert.equal((await store(dir, 'RT-dev').load('api'))?.refreshToken, 'RT-dev-rotated-2', 'dev after a restart')

  // Nor do they share a renewal lock: one renewing does not hold up the other.
  const prodLock = await prod.lock('api', { leaseMs: 60_000, waitMs: 0 })
  assert.ok(prodLock !== undefined)
  const devLock = await dev.lock('api', { leaseMs: 60_000, waitMs: 0 })
  assert.ok(devLock !== undefined, 'dev takes its own lock while prod holds its')
  await devLock.release()
  await prodLock.release()

  // Dropping one's token leaves the other's.
  await dev.delete('api')
  assert.equal(await store(dir, 'RT-dev').load('api'), undefined)
  assert.equal((await store(dir, 'RT-prod').load('api'))?.accessToken, 'AT-prod')
})

test('two proxies with other credentials for route "api" on one stateDir renew and restart without spending each other\'s refresh token', async (t) => {
  const clock = new ManualClock()
  const upstream = await recordingUpstream(t)
  // Per client, rotates the refresh token at every use and takes only the latest.
  const latest = new Map([['prod', 'rt-prod-seed'], ['dev', 'rt-dev-seed']])
  const issued = new Map([['prod', 0], ['dev', 0]])
  const tokens = await tokenServer(t, (c, _n, res) => {
    const client = c.form.get('client_id') ?? ''
    if (c.form.get('grant_type') !== 'refresh_token' || c.form.get('refresh_token') !== latest.get(client)) return sendJson(res, 400, { error: 'invalid_grant' })
    const n = (issued.get(client) ?? 0) + 1
    issued.set(client, n)
    latest.set(client, `rt-${client}-${n}`)
    sendJson(res, 200, { access_token: `access-${client}-${n}`, token_type: 'Bearer', expires_in: 3600, refresh_token: latest.get(client) })
  })
  const dir = tempDir(t)
  const config = (client: string) => ({
    stateDir: dir,
    routes: { api: { upstream: upstream.url, auth: { type: 'refresh_token', tokenUrl: tokens.tokenUrl, clientId: client, clientSecret: `${client}-secret-value`, clientAuth: 'client_secret_post', refreshToken: `rt-${client}-seed` } } }
  })

  for (let round = 1; round <= 2; round++) {
    for (const client of ['prod', 'dev']) {
      const proxy = await startProxy(t, config(client), { now: clock.now })
      const res = await call(`${proxy.url}/api/x`)
      assert.equal(res.status, 200, `${client}, round ${round}: ${res.text}`)
      assert.equal(tokenOf(upstream.requests.at(-1)), `access-${client}-${round}`)
      await proxy.close()
    }
    // Past expiry: each restarted proxy must refresh with the refresh token it was given last.
    clock.advance(2 * HOUR)
  }
  assert.deepEqual(tokens.calls.map((c) => `${c.form.get('client_id')}:${c.form.get('refresh_token')}`), [
    'prod:rt-prod-seed', 'dev:rt-dev-seed', 'prod:rt-prod-1', 'dev:rt-dev-1'
  ])
})

test('a token file of an earlier version (named by the route alone) is kept for the config it belongs to while another config on the dir writes its own', async (t) => {
  const upstream = await recordingUpstream(t)
  const tokens = await tokenServer(t)
  const dir = tempDir(t)
  const input = (clientId: string) => ({ stateDir: dir, routes: { api: { upstream: upstream.url, auth: { type: 'client_credentials', tokenUrl: tokens.tokenUrl, clientId, clientSecret: 'client-secret-value' } } } })
  // As the first format wrote it, for the "old" client's settings.
  const auth = parseConfig(input('old'), { env: {} }).routes[0]?.auth
  const legacy = join(dir, 'api.token.json')
  const now = Date.now()
  writeFileSync(legacy, JSON.stringify({
    format: 1,
    route: 'api',
    fingerprint: createHash('sha256').update(JSON.stringify(auth)).digest('hex'),
    token: { accessToken: 'legacy-access', obtainedAt: now, expiresAt: now + HOUR }
  }), { mode: 0o600 })

  const other = await startProxy(t, input('new'))
  assert.equal((await call(`${other.url}/api/a`)).status, 200)
  await other.close()
  assert.ok(existsSync(legacy), 'not the other config\'s to remove')

  const owner = await startProxy(t, input('old'))
  assert.equal((await call(`${owner.url}/api/b`)).status, 200)
  assert.deepEqual(upstream.requests.map(tokenOf), ['token-1', 'legacy-access'], 'the old config still finds its token')
  assert.equal(tokens.calls.length, 1)
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp') || f.includes('.lock')), [])
})
