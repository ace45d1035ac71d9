import assert from 'node:assert/strict'
import { test } from 'node:test'
import { authorizationCodeLogin } from '../src/auth/authorization-code-login.js'
import { LoginError } from '../src/auth/login-error.js'
import { startLoginProvider } from './fixtures/oidc-login-provider.js'
import { Browser, type PageAnswer } from './login-helpers.js'

test('the person cancels at the login page: access_denied ends the login with the server\'s words, nothing exchanged', async (t) => {
  const op = await startLoginProvider()
  t.after(() => op.close())
  let exchanged = 0
  let page: Promise<PageAnswer> | undefined
  await assert.rejects(authorizationCodeLogin({
    authorizationUrl: op.authorizationUrl,
    clientId: op.clients.public.clientId,
    scope: 'openid',
    present: (url) => { page = new Browser().walk(url, { abort: true }) },
    grant: async () => { exchanged++; return { accessToken: 'never' } },
    timeoutMs: 30_000
  }), (err: unknown) => {
    assert.ok(err instanceof LoginError)
    assert.equal(err.reason, 'denied')
    assert.equal(err.oauthError, 'access_denied')
    assert.match(err.message, /refused the login: access_denied: End-User aborted interaction/)
    return true
  })
  assert.equal(exchanged, 0)
  assert.equal(op.tokenRequests.length, 0)
  const answer = await page
  assert.equal(answer?.status, 400)
  assert.match(answer?.text ?? '', /Login failed/)
  assert.doesNotMatch(answer?.text ?? '', /aborted interaction/, 'the server\'s words are not put in the page')
})

test('an error description cannot write to the terminal: control and bidi characters are removed, the length capped', async () => {
  const hostile = `denied\u001b]52;c;cGF5bG9hZA==\u0007\r\nbearer-proxy: login ok\u202Egnp.exe ${'x'.repeat(1000)}`
  await assert.rejects(authorizationCodeLogin({
    authorizationUrl: 'http://127.0.0.1:9/authorize',
    clientId: 'cli',
    present: async (url) => {
      const sent = new URL(url).searchParams
      const callback = new URL(sent.get('redirect_uri') ?? '')
      callback.searchParams.set('state', sent.get('state') ?? '')
      callback.searchParams.set('error', 'invalid_scope\u001b[2J')
      callback.searchParams.set('error_description', hostile)
      await fetch(callback, { signal: AbortSignal.timeout(10_000) })
    },
    grant: async () => assert.fail('no exchange after an error'),
    timeoutMs: 30_000
  }), (err: unknown) => {
    assert.ok(err instanceof LoginError)
    assert.equal(err.reason, 'authorization_error')
    assert.ok(![...err.message].some((ch) => { const c = ch.codePointAt(0) ?? 0; return c < 0x20 || c === 0x7f || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) }), JSON.stringify(err.message))
    assert.ok(err.message.length < 400, `capped: ${err.message.length}`)
    assert.match(err.message, /invalid_scope/)
    return true
  })
})
