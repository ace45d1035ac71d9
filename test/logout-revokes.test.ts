import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { pino } from 'pino'
import { FileTokenStore } from '../src/auth/file-token-store.js'
import { TokenError } from '../src/auth/token-error.js'
import { loadConfigFile } from '../src/config/load.js'
import { runCli, tempDir } from './cli-helpers.js'
import { DEVICE_CODE_GRANT, startLoginProvider } from './fixtures/oidc-login-provider.js'
import { Browser, carriesNone, publicClient, runCliLive, tokenClient } from './login-helpers.js'
import { writeConfig } from './operability-helpers.js'

test('device code login through the command, then logout forgets the tokens and revokes the refresh token (it then fails at the provider)', async (t) => {
  const op = await startLoginProvider({ deviceInterval: 1 })
  t.after(() => op.close())
  const dir = tempDir(t)
  const file = join(dir, 'config.json')
  const clientId = op.clients.public.clientId
  // The device authorization, token and revocation endpoints all come from the issuer's metadata.
  writeConfig(file, { stateDir: join(dir, 'state'), routes: { device: { upstream: 'http://127.0.0.1:9', auth: { type: 'device_code', issuer: op.issuer, clientId, scope: 'openid' } } } })

  const login = runCliLive(t, ['login', 'device', '-c', file])
  const [, complete] = await login.waitFor(/\(or open (\S+)\)/)
  const [, userCode] = await login.waitFor(/^ {2}([A-Z]{4}-[A-Z]{4})$/m)
  assert.ok(complete?.includes(encodeURIComponent(userCode ?? '')) || complete?.includes(userCode ?? ''), complete)
  assert.equal((await new Browser().walk(complete ?? '')).status, 200)
  const loggedIn = await login.done
  assert.equal(loggedIn.code, 0, loggedIn.stderr)
  assert.equal(op.deviceRequests[0]?.form.get('scope'), 'openid')

  const config = loadConfigFile(file)
  const store = new FileTokenStore({ dir: join(dir, 'state'), logger: pino({ level: 'silent' }), settings: new Map(config.routes.map((r) => [r.name, r.auth])) })
  const stored = await store.load('device') ?? assert.fail('the login is stored')
  const refreshToken = stored.refreshToken ?? assert.fail('with a refresh token')
  const deviceCode = op.tokenRequests.find((r) => r.form.get('grant_type') === DEVICE_CODE_GRANT)?.form.get('device_code') ?? undefined

  const logout = await runCli(['logout', 'device', '-c', file])
  assert.equal(logout.code, 0, logout.stderr)
  assert.match(logout.stderr, /stored tokens are forgotten/)
  assert.match(logout.stderr, /refresh token is revoked/)
  assert.equal(op.revocationRequests.length, 1)
  assert.equal(op.revocationRequests[0]?.status, 200)
  assert.equal(op.revocationRequests[0]?.form.get('token_type_hint'), 'refresh_token')
  assert.equal(await store.load('device'), undefined)
  await assert.rejects(tokenClient(op.tokenUrl, publicClient(clientId))({ grant_type: 'refresh_token', refresh_token: refreshToken }, AbortSignal.timeout(10_000)),
    (err: unknown) => err instanceof TokenError && err.oauthError === 'invalid_grant')

  for (const output of [loggedIn.stdout, loggedIn.stderr, logout.stdout, logout.stderr]) {
    assert.ok(carriesNone(output, [stored.accessToken, refreshToken, deviceCode]), output)
  }

  // Logged out already: nothing stored, nothing to revoke, still exit 0.
  const again = await runCli(['logout', 'device', '-c', file])
  assert.equal(again.code, 0, again.stderr)
  assert.equal(op.revocationRequests.length, 1)
})
