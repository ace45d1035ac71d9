import assert from 'node:assert/strict'
import { test } from 'node:test'
import { publicClient } from '../src/auth/client-auth.js'
import { FileTokenStore } from '../src/auth/file-token-store.js'
import { revokeRefreshToken } from '../src/auth/revocation.js'
import type { TokenBroker } from '../src/auth/broker.js'
import { tempDir } from './cli-helpers.js'
import { startLoginProvider } from './fixtures/oidc-login-provider.js'
import { recordingUpstream, startProxy } from './helpers.js'
import { Browser } from './login-helpers.js'

test('a user login is refreshed across expiries; a refused refresh token is dropped and the route answers LOGIN_REQUIRED, asking the provider no more', async (t) => {
  const op = await startLoginProvider()
  t.after(() => op.close())
  const upstream = await recordingUpstream(t)
  const stateDir = tempDir(t)
  let now = Date.now()
  const clientId = op.clients.public.clientId
  const proxy = await startProxy(t, {
    stateDir,
    routes: { api: { upstream: upstream.url, auth: { type: 'authorization_code', authorizationUrl: op.authorizationUrl, tokenUrl: op.tokenUrl, clientId, scope: 'openid' } } }
  }, { now: () => now })
  const broker = proxy.brokers.get('api') as TokenBroker
  const get = async (): Promise<{ status: number, code?: string }> => {
    const res = await fetch(`${proxy.url}/api/x`)
    const body = await res.json() as { error?: { code: string } }
    return { status: res.status, ...(body.error === undefined ? {} : { code: body.error.code }) }
  }

  // The login as `bearer-proxy login` runs it, the person played over HTTP.
  const login = broker.source.login ?? assert.fail('a user-login source')
  const tokens = await login({ openUrl: (url) => { new Browser().walk(url).catch(() => {}) }, showCode: () => {} }, AbortSignal.timeout(30_000))
  await broker.storeLogin(tokens)
  assert.equal((await get()).status, 200)
  const refreshes = (): number => op.tokenRequests.filter((r) => r.form.get('grant_type') === 'refresh_token').length

  // Across two expiries (the provider's tokens live 300 s), each renewal is a refresh at the provider.
  const seen = new Set([upstream.requests.at(-1)?.headers.authorization])
  for (let i = 1; i <= 2; i++) {
    now += 301_000
    assert.equal((await get()).status, 200)
    assert.equal(refreshes(), i)
    assert.equal(op.tokenRequests.at(-1)?.status, 200)
    seen.add(upstream.requests.at(-1)?.headers.authorization)
  }
  assert.equal(seen.size, 3, 'a new access token after each expiry')

  // The refresh token dies at the provider (revoked elsewhere); the next renewal is refused.
  const refreshToken = broker.status().token?.refreshToken ?? assert.fail('a refresh token')
  assert.deepEqual(await revokeRefreshToken({ revocationUrl: op.revocationUrl, refreshToken, clientAuth: publicClient(clientId) }), { revoked: true })
  now += 301_000
  assert.deepEqual(await get(), { status: 401, code: 'LOGIN_REQUIRED' })
  assert.equal(op.tokenRequests.at(-1)?.error, 'invalid_grant')
  const requestsAfterRefusal = op.tokenRequests.length
  const store = new FileTokenStore({ dir: stateDir, logger: proxy.app.log as never, settings: new Map(proxy.config.routes.map((r) => [r.name, r.auth])) })
  assert.equal(await store.load('api'), undefined, 'the dead login is dropped from the store')
  assert.equal(broker.status().state, 'login_required')

  // Not a loop, not 502 forever: LOGIN_REQUIRED, and no more token requests until the next login.
  for (let i = 0; i < 10; i++) {
    now += 2000
    assert.deepEqual(await get(), { status: 401, code: 'LOGIN_REQUIRED' })
  }
  assert.equal(op.tokenRequests.length, requestsAfterRefusal)
  assert.equal(upstream.requests.length, 3)
  assert.deepEqual(op.serverErrors(), [])
})
