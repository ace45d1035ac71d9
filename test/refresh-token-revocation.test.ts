import assert from 'node:assert/strict'
import { test } from 'node:test'
import { authorizationCodeLogin } from '../src/auth/authorization-code-login.js'
import { type ClientAuth, clientSecretBasic, publicClient } from '../src/auth/client-auth.js'
import { revokeRefreshToken } from '../src/auth/revocation.js'
import { TokenError } from '../src/auth/token-error.js'
import { startLoginProvider } from './fixtures/oidc-login-provider.js'
import { sendJson, tokenServer } from './helpers.js'
import { Browser, carriesNone, tokenClient } from './login-helpers.js'

test('logout revokes the refresh token (RFC 7009): it no longer works afterwards', async (t) => {
  const op = await startLoginProvider()
  t.after(() => op.close())
  const { public: pub, confidential } = op.clients
  const clients: Array<[string, ClientAuth]> = [
    [pub.clientId, publicClient(pub.clientId)],
    [confidential.clientId, clientSecretBasic(confidential.clientId, confidential.clientSecret)]
  ]
  for (const [clientId, client] of clients) {
    const grant = tokenClient(op.tokenUrl, client, [confidential.clientSecret])
    const tokens = await authorizationCodeLogin({
      authorizationUrl: op.authorizationUrl,
      clientId,
      scope: 'openid',
      present: (url) => { new Browser().walk(url).catch(() => {}) },
      grant,
      timeoutMs: 30_000
    })
    const refreshToken = tokens.refreshToken ?? assert.fail('a refresh token')
    const result = await revokeRefreshToken({ revocationUrl: op.revocationUrl, refreshToken, authenticate: client })
    assert.deepEqual(result, { revoked: true }, clientId)
    const revocation = op.revocationRequests.at(-1)
    assert.equal(revocation?.form.get('token_type_hint'), 'refresh_token')
    assert.equal(revocation?.status, 200)
    await assert.rejects(grant({ grant_type: 'refresh_token', refresh_token: refreshToken }, AbortSignal.timeout(10_000)),
      (err: unknown) => err instanceof TokenError && err.kind === 'rejected' && err.oauthError === 'invalid_grant' && carriesNone(err.message, [refreshToken]))
  }
})

test('a failed revocation is reported, not thrown, and its reason carries no token or secret', async (t) => {
  const refreshToken = 'refresh-token-value-0123456789'
  const clientSecret = 'client-secret-value-0123456789'
  const echo = await tokenServer(t, (call, _n, res) => {
    sendJson(res, 400, { error: 'unsupported_token_type', error_description: `cannot revoke ${call.body} for ${call.headers.authorization ?? ''}` })
  })
  const refused = await revokeRefreshToken({ revocationUrl: echo.tokenUrl, refreshToken, authenticate: clientSecretBasic('cli', clientSecret) })
  assert.equal(refused.revoked, false)
  assert.ok(!refused.revoked && /unsupported_token_type/.test(refused.reason) && carriesNone(refused.reason, [refreshToken, clientSecret]), JSON.stringify(refused))

  const down = await tokenServer(t, (_call, _n, res) => { sendJson(res, 503, { error: 'temporarily_unavailable' }) })
  const unavailable = await revokeRefreshToken({ revocationUrl: down.tokenUrl, refreshToken, authenticate: publicClient('cli') })
  assert.ok(!unavailable.revoked && /HTTP 503/.test(unavailable.reason))

  const silent = await tokenServer(t, () => {})
  const timedOut = await revokeRefreshToken({ revocationUrl: silent.tokenUrl, refreshToken, authenticate: publicClient('cli'), timeoutMs: 200 })
  assert.ok(!timedOut.revoked && /no answer within 200 ms/.test(timedOut.reason))
})
