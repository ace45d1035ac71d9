import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { startProxy } from './helpers.js'
import { startNetApi } from './fixtures/net-api.js'

async function netApi (t: TestContext) {
  const api = await startNetApi()
  t.after(() => api.close())
  return api
}

function passwordRoute (url: string, credentials: { clientId: string, clientSecret: string, username: string, password: string }) {
  return { upstream: url, auth: { type: 'password' as const, tokenUrl: `${url}/oauth/token`, ...credentials } }
}

test('password grant, then renewal with the refresh token the Net API keeps valid', async (t) => {
  const api = await netApi(t)
  const { clientId, clientSecret, username, password } = api.credentials
  let clock = Date.now()
  const proxy = await startProxy(t, { routes: { net: passwordRoute(api.url, { clientId, clientSecret, username, password }) } }, { now: () => clock })

  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${proxy.url}/net/v1/users`)
    assert.equal(res.status, 200, `request ${i}: ${await res.clone().text()}`)
    assert.equal(((await res.json()) as { data: unknown[] }).data.length, 2)
    // Past the Net API's 3600 s lifetime: the next request needs a new token.
    clock += 3700_000
  }

  const forms = api.tokenRequests.map((r) => new URLSearchParams(r.body.toString('utf8')))
  assert.deepEqual(forms.map((f) => f.get('grant_type')), ['password', 'refresh_token', 'refresh_token'])
  assert.equal(forms[0]?.get('username'), username)
  assert.equal(forms[0]?.get('password'), password)
  // Net API does not rotate: the refresh token from the password grant is kept and sent both times.
  const refreshToken = forms[1]?.get('refresh_token')
  assert.ok(refreshToken !== null && refreshToken !== undefined && refreshToken !== '')
  assert.equal(forms[2]?.get('refresh_token'), refreshToken)
  assert.ok(api.check(refreshToken, 'refresh').ok, 'it is a refresh token the Net API issued')
  // Client authentication by HTTP Basic, never also in the body.
  for (const [i, request] of api.tokenRequests.entries()) {
    assert.match(request.headers.authorization ?? '', /^Basic /, `token request ${i}`)
    assert.equal(forms[i]?.has('client_secret'), false)
  }
  // Every request carried the access token issued just before it.
  assert.deepEqual(api.requests.map((r) => r.headers.authorization), api.issuedAccessTokens().map((tok) => `Bearer ${tok}`))
})

test('a wrong password is 502 TOKEN_REJECTED without the password in the body', async (t) => {
  const api = await netApi(t)
  const { clientId, clientSecret, username } = api.credentials
  const wrong = 'wrong-password-CANARY-93kq1x'
  const proxy = await startProxy(t, { routes: { net: passwordRoute(api.url, { clientId, clientSecret, username, password: wrong }) } })

  const res = await fetch(`${proxy.url}/net/v1/users`)
  const text = await res.text()
  assert.equal(res.status, 502)
  const body = JSON.parse(text) as { error: { code: string, message: string, route: string } }
  assert.equal(body.error.code, 'TOKEN_REJECTED')
  assert.equal(body.error.route, 'net')
  assert.match(body.error.message, /invalid_grant/)
  assert.ok(!text.includes(wrong), 'the password is not in the error body')
  assert.ok(!proxy.logs.text().includes(wrong), 'the password is not logged')
  assert.equal(api.requests.length, 0, 'the API is not called without a token')
})
