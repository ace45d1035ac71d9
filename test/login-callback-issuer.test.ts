import assert from 'node:assert/strict'
import { test } from 'node:test'
import { authorizationCodeLogin } from '../src/auth/authorization-code-login.js'
import { publicClient } from '../src/auth/client-auth.js'
import { LoginError } from '../src/auth/login-error.js'
import { startLoginProvider } from './fixtures/oidc-login-provider.js'
import { Browser, tokenClient } from './login-helpers.js'

/** RFC 9207: the authorization response names its issuer, so a response from another server (mix-up) is told apart. */
test('a callback naming another issuer, or none when the server always names it, is refused before any exchange', async (t) => {
  const op = await startLoginProvider()
  t.after(() => op.close())
  for (const [tamper, required] of [[(u: URL) => u.searchParams.set('iss', 'https://other-as.example'), false], [(u: URL) => u.searchParams.delete('iss'), true]] as const) {
    let exchanged = 0
    await assert.rejects(authorizationCodeLogin({
      authorizationUrl: op.authorizationUrl,
      clientId: op.clients.public.clientId,
      scope: 'openid',
      issuer: op.issuer,
      issRequired: required,
      present: (url) => {
        new Browser().walk(url, { beforeLeaving: (next) => { const u = new URL(next); tamper(u); return u.href } }).catch(() => {})
      },
      grant: async () => { exchanged++; return { accessToken: 'never' } },
      timeoutMs: 30_000
    }), (err: unknown) => err instanceof LoginError && err.reason === 'issuer_mismatch')
    assert.equal(exchanged, 0)
  }
  // Unchanged, the same callback passes: oidc-provider sends its own issuer.
  const tokens = await authorizationCodeLogin({
    authorizationUrl: op.authorizationUrl,
    clientId: op.clients.public.clientId,
    scope: 'openid',
    issuer: op.issuer,
    issRequired: true,
    present: (url) => { new Browser().walk(url).catch(() => {}) },
    grant: tokenClient(op.tokenUrl, publicClient(op.clients.public.clientId)),
    timeoutMs: 30_000
  })
  assert.ok(tokens.accessToken.length > 0)
})
