import assert from 'node:assert/strict'
import { test } from 'node:test'
import { authorizationCodeLogin } from '../src/auth/authorization-code-login.js'
import { LoginError } from '../src/auth/login-error.js'
import { newState } from '../src/auth/pkce.js'
import { startLoginProvider } from './fixtures/oidc-login-provider.js'
import { Browser, carriesNone, type PageAnswer } from './login-helpers.js'

test('a callback whose state this login did not send is refused, and its code is never exchanged', async (t) => {
  const op = await startLoginProvider()
  t.after(() => op.close())
  let exchanged = 0
  let page: Promise<PageAnswer> | undefined
  let callbackUrl = ''
  const login = authorizationCodeLogin({
    authorizationUrl: op.authorizationUrl,
    clientId: op.clients.public.clientId,
    scope: 'openid',
    // The redirect arrives with a real code but another state: a login someone else started.
    present: (url) => {
      page = new Browser().walk(url, {
        beforeLeaving: (next) => {
          const forged = new URL(next)
          forged.searchParams.set('state', newState())
          callbackUrl = forged.href
          return forged.href
        }
      })
    },
    grant: async () => { exchanged++; return { accessToken: 'never' } },
    timeoutMs: 30_000
  })
  await assert.rejects(login, (err: unknown) => {
    assert.ok(err instanceof LoginError)
    assert.equal(err.reason, 'state_mismatch')
    assert.match(err.message, /state/)
    const callback = new URL(callbackUrl).searchParams
    assert.ok(carriesNone(err.message, [callback.get('code') ?? undefined, callback.get('state') ?? undefined]))
    return true
  })
  assert.equal(exchanged, 0, 'nothing exchanged')
  assert.equal(op.tokenRequests.length, 0, 'the token endpoint was never asked')
  const answer = await page
  assert.equal(answer?.status, 400)
  assert.match(answer?.text ?? '', /Login failed/)
})

test('a forged callback that reaches the listener first ends the login without an exchange', async () => {
  let exchanged = 0
  let attacker: Promise<number> | undefined
  const login = authorizationCodeLogin({
    authorizationUrl: 'http://127.0.0.1:9/authorize',
    clientId: 'cli',
    present: (url) => {
      const redirect = new URL(new URL(url).searchParams.get('redirect_uri') ?? '')
      redirect.searchParams.set('code', 'attacker-code-0123456789')
      redirect.searchParams.set('state', 'attacker-guess-0123456789')
      attacker = fetch(redirect, { signal: AbortSignal.timeout(10_000) }).then((res) => res.status)
    },
    grant: async () => { exchanged++; return { accessToken: 'never' } },
    timeoutMs: 30_000
  })
  await assert.rejects(login, (err: unknown) => err instanceof LoginError && err.reason === 'state_mismatch' && carriesNone(err.message, ['attacker-code-0123456789', 'attacker-guess-0123456789']))
  assert.equal(exchanged, 0)
  assert.equal(await attacker, 400)
})
