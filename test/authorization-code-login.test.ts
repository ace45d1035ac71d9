import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { authorizationCodeLogin } from '../src/auth/authorization-code-login.js'
import { clientSecretBasic, publicClient } from '../src/auth/client-auth.js'
import { LoginError } from '../src/auth/login-error.js'
import { startLoginProvider, type LoginProviderFixture } from './fixtures/oidc-login-provider.js'
import { freePort, listen } from './helpers.js'
import { Browser, tokenClient, type PageAnswer } from './login-helpers.js'

async function provider (t: { after: (fn: () => Promise<void>) => void }): Promise<LoginProviderFixture> {
  const op = await startLoginProvider()
  t.after(() => op.close())
  return op
}

/** The person: opens the URL, logs in and consents; the browser's last page is kept. */
function person (): { present: (url: string) => void, page: () => Promise<PageAnswer> } {
  let page: Promise<PageAnswer> | undefined
  return {
    present: (url) => { page = new Browser().walk(url) },
    page: async () => {
      assert.ok(page !== undefined, 'the URL was presented')
      return page
    }
  }
}

test('a public client logs in with PKCE S256 on a loopback redirect: the verifier sent matches the challenge', async (t) => {
  const op = await provider(t)
  const browser = person()
  const tokens = await authorizationCodeLogin({
    authorizationUrl: op.authorizationUrl,
    clientId: op.clients.public.clientId,
    scope: 'openid api:read',
    issuer: op.issuer,
    issRequired: true,
    present: browser.present,
    grant: tokenClient(op.tokenUrl, publicClient(op.clients.public.clientId)),
    timeoutMs: 30_000
  })
  assert.ok(tokens.accessToken.length > 0)
  assert.ok(tokens.refreshToken !== undefined, 'a refresh token for later renewals')

  const [authorization] = op.authorizationRequests
  assert.ok(authorization !== undefined)
  assert.equal(authorization.get('response_type'), 'code')
  assert.equal(authorization.get('client_id'), op.clients.public.clientId)
  assert.equal(authorization.get('scope'), 'openid api:read')
  assert.equal(authorization.get('code_challenge_method'), 'S256')
  assert.match(authorization.get('redirect_uri') ?? '', /^http:\/\/127\.0\.0\.1:\d+\/callback$/)
  assert.ok((authorization.get('state') ?? '').length >= 43, 'an unguessable state')

  const exchanges = op.tokenRequests.filter((r) => r.form.get('grant_type') === 'authorization_code')
  assert.equal(exchanges.length, 1)
  const exchange = exchanges[0]?.form
  assert.ok(exchange !== undefined)
  const verifier = exchange.get('code_verifier') ?? ''
  assert.match(verifier, /^[A-Za-z0-9\-._~]{43,128}$/)
  assert.equal(createHash('sha256').update(verifier).digest('base64url'), authorization.get('code_challenge'))
  assert.equal(exchange.get('redirect_uri'), authorization.get('redirect_uri'))
  assert.equal(exchange.get('client_id'), op.clients.public.clientId, 'a public client names itself in the body')

  // The browser gets a page that says so, and nothing of the callback.
  const page = await browser.page()
  assert.equal(page.status, 200)
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/)
  assert.equal(page.headers.get('cache-control'), 'no-store')
  assert.equal(page.headers.get('referrer-policy'), 'no-referrer')
  assert.ok(!page.text.includes(exchange.get('code') ?? '(none)'))
  assert.doesNotMatch(page.text, /<script|<link|src=|href=/i, 'self-contained: no script, no external asset')
  assert.match(page.text, /close this tab/)

  // The refresh token works at the token endpoint, as the broker will use it.
  const refreshed = await tokenClient(op.tokenUrl, publicClient(op.clients.public.clientId))({ grant_type: 'refresh_token', refresh_token: tokens.refreshToken }, AbortSignal.timeout(10_000))
  assert.ok(refreshed.accessToken.length > 0)
  assert.deepEqual(op.serverErrors(), [])
})

test('a confidential client authenticates the code exchange through the route\'s client', async (t) => {
  const op = await provider(t)
  const { clientId, clientSecret } = op.clients.confidential
  const tokens = await authorizationCodeLogin({
    authorizationUrl: op.authorizationUrl,
    clientId,
    scope: 'openid',
    present: person().present,
    grant: tokenClient(op.tokenUrl, clientSecretBasic(clientId, clientSecret), [clientSecret]),
    timeoutMs: 30_000
  })
  assert.ok(tokens.accessToken.length > 0)
  const exchange = op.tokenRequests.find((r) => r.form.get('grant_type') === 'authorization_code')
  assert.equal(exchange?.status, 200)
  assert.equal(exchange?.form.get('client_secret'), null, 'client_secret_basic: the secret is in the header only')
})

test('extra params reach the authorization request but never replace the protocol\'s own fields', async (t) => {
  const op = await provider(t)
  await authorizationCodeLogin({
    authorizationUrl: op.authorizationUrl,
    clientId: op.clients.public.clientId,
    scope: 'openid',
    params: { ui_locales: 'de', state: 'chosen-by-config', redirect_uri: 'https://elsewhere.example/cb', code_challenge_method: 'plain', response_type: 'token' },
    present: person().present,
    grant: tokenClient(op.tokenUrl, publicClient(op.clients.public.clientId)),
    timeoutMs: 30_000
  })
  const [authorization] = op.authorizationRequests
  assert.equal(authorization?.get('ui_locales'), 'de')
  assert.notEqual(authorization?.get('state'), 'chosen-by-config')
  assert.match(authorization?.get('redirect_uri') ?? '', /^http:\/\/127\.0\.0\.1:\d+\/callback$/)
  assert.equal(authorization?.get('code_challenge_method'), 'S256')
  assert.equal(authorization?.get('response_type'), 'code')
  assert.equal(authorization?.getAll('state').length, 1)
})

test('redirectPort: the listener takes that port; a port in use is a clear error', async (t) => {
  const op = await provider(t)
  const port = await freePort()
  let presented = ''
  await authorizationCodeLogin({
    authorizationUrl: op.authorizationUrl,
    clientId: op.clients.public.clientId,
    scope: 'openid',
    redirectPort: port,
    present: (url) => { presented = url; person().present(url) },
    grant: tokenClient(op.tokenUrl, publicClient(op.clients.public.clientId)),
    timeoutMs: 30_000
  })
  assert.equal(new URL(presented).searchParams.get('redirect_uri'), `http://127.0.0.1:${port}/callback`)

  const busy = await listen(t, (_req, res) => { res.end() })
  await assert.rejects(authorizationCodeLogin({
    authorizationUrl: op.authorizationUrl,
    clientId: op.clients.public.clientId,
    redirectPort: busy.port,
    present: () => { assert.fail('nothing to present without a listener') },
    grant: async () => assert.fail('no exchange'),
    timeoutMs: 30_000
  }), (err: unknown) => err instanceof LoginError && err.reason === 'listen' && err.message.includes(`port ${busy.port}`) && err.message.includes('in use'))
})
