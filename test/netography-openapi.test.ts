import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { decodeProtectedHeader, jwtVerify, SignJWT } from 'jose'
import type { RecordedRequest } from './fixtures/emulator.js'
import { startNetography, validateAgainstOpenApi, validateRequestAgainstOpenApi } from './fixtures/netography.js'
import { call, SkewClock, startSeedEmulator, startSeedProxy } from './seed-helpers.js'

// The Netography token exchanges, both sides, against the OpenAPI document
// embedded in seed 000: the emulator's answers (so the end-to-end tests run
// against the documented API) and the proxy's requests (so the proxy speaks it).

const API_KEY_TOKEN = '/api/v1/auth/token'
const USER_TOKEN = '/api/auth/bearer/token'
const REFRESH = '/api/auth/bearer/refresh'

type Netography = Awaited<ReturnType<typeof startNetography>>

async function post (url: string, body: string, contentType: string): Promise<{ status: number, json: unknown }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body })
  return { status: res.status, json: await res.json() }
}

const postJson = (url: string, body: unknown) => post(url, JSON.stringify(body), 'application/json')
const postForm = (url: string, fields: Record<string, string>) => post(url, new URLSearchParams(fields).toString(), 'application/x-www-form-urlencoded')

/** A request token as the documentation's recipe builds it. */
function requestToken (emu: Netography, secret = emu.credentials.apiKey.sharedsecret): Promise<string> {
  const { appname, appkey, shortname } = emu.credentials.apiKey
  return new SignJWT({ appname, appkey, shortname })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setJti(randomUUID())
    .sign(new TextEncoder().encode(secret))
}

function assertAnswer (path: string, answer: { status: number, json: unknown }, status: number): void {
  assert.equal(answer.status, status, `${path}: ${JSON.stringify(answer.json)}`)
  const result = validateAgainstOpenApi(path, 'post', status, answer.json)
  assert.deepEqual(result.errors, [], `${path} ${status} answer matches the document`)
  assert.equal(result.valid, true)
}

function formOf (request: RecordedRequest): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(request.body.toString('utf8')))
}

function assertRequest (request: RecordedRequest, contentType: string, body: unknown): void {
  assert.equal(request.method, 'POST')
  assert.equal(request.headers['content-type']?.split(';')[0], contentType)
  const result = validateRequestAgainstOpenApi(request.path, 'post', contentType, body)
  assert.deepEqual(result.errors, [], `the proxy's ${request.path} request matches the document`)
  assert.equal(result.valid, true)
}

test('the validator is not a rubber stamp: off-document bodies are reported', () => {
  assert.equal(validateAgainstOpenApi(API_KEY_TOKEN, 'post', 200, { access_token: 42 }).valid, false)
  assert.equal(validateAgainstOpenApi(API_KEY_TOKEN, 'post', 200, { access_token: 'x', extra: true }).valid, false)
  assert.equal(validateAgainstOpenApi(REFRESH, 'post', 400, 'not an object').valid, false)
  assert.equal(validateRequestAgainstOpenApi(API_KEY_TOKEN, 'post', 'application/json', { jwt: 'x', appkey: 'y' }).valid, false)
  assert.equal(validateRequestAgainstOpenApi(USER_TOKEN, 'post', 'application/x-www-form-urlencoded', { user: 'x' }).valid, false)
})

test('the emulator\'s token answers and error bodies validate against the seed\'s OpenAPI document', async (t) => {
  const emu = await startSeedEmulator(t, () => startNetography())
  const { username, password } = emu.credentials

  // 200 from each of the three token endpoints.
  const byKey = await postJson(`${emu.url}${API_KEY_TOKEN}`, { jwt: await requestToken(emu) })
  assertAnswer(API_KEY_TOKEN, byKey, 200)
  const byUser = await postForm(`${emu.url}${USER_TOKEN}`, { username, password })
  assertAnswer(USER_TOKEN, byUser, 200)
  const refreshToken = (byUser.json as { refresh_token: string }).refresh_token
  const refreshed = await postForm(`${emu.url}${REFRESH}`, { refresh_token: refreshToken })
  assertAnswer(REFRESH, refreshed, 200)

  // 401 for refused credentials, 400 for a refused refresh token or a body off the document.
  assertAnswer(API_KEY_TOKEN, await postJson(`${emu.url}${API_KEY_TOKEN}`, { jwt: await requestToken(emu, 'not-the-shared-secret') }), 401)
  assertAnswer(API_KEY_TOKEN, await postJson(`${emu.url}${API_KEY_TOKEN}`, { token: 'x' }), 400)
  assertAnswer(USER_TOKEN, await postForm(`${emu.url}${USER_TOKEN}`, { username, password: `${password}-wrong` }), 401)
  assertAnswer(USER_TOKEN, await postForm(`${emu.url}${USER_TOKEN}`, { username }), 400)
  // Rotation: the refresh token used above is spent.
  assertAnswer(REFRESH, await postForm(`${emu.url}${REFRESH}`, { refresh_token: refreshToken }), 400)

  // The bodies of the rejectCredentials mode the end-to-end tests use.
  emu.mode = 'rejectCredentials'
  assertAnswer(API_KEY_TOKEN, await postJson(`${emu.url}${API_KEY_TOKEN}`, { jwt: await requestToken(emu) }), 401)
  assertAnswer(USER_TOKEN, await postForm(`${emu.url}${USER_TOKEN}`, { username, password }), 401)
  assertAnswer(REFRESH, await postForm(`${emu.url}${REFRESH}`, { refresh_token: 'x' }), 400)
  assert.deepEqual(emu.internalErrors, [])
})

test('the proxy\'s request token exchange (netography-api-key.yaml) matches the document; every request token is fresh', async (t) => {
  const clock = new SkewClock()
  const emu = await startSeedEmulator(t, () => startNetography())
  const proxy = await startSeedProxy(t, 'netography-api-key', { NETOSECRET: emu.credentials.netosecret }, { now: clock.now })
  const { appname, appkey, shortname, sharedsecret } = emu.credentials.apiKey

  assert.equal((await call(`${proxy.url}/netography/api/v1/devices`)).status, 200)
  // Every token dead, refresh token included: the refresh is refused and the proxy
  // must build a second request token. The skew passes the 1 s minimum interval.
  emu.revokeAll({ refreshTokens: true })
  clock.skip(1000)
  assert.equal((await call(`${proxy.url}/netography/api/v1/devices`)).status, 200)

  const refreshes = emu.tokenRequests.filter((r) => r.path === REFRESH)
  assert.equal(refreshes.length, 1, 'the refresh token was tried first')
  assertRequest(refreshes[0] as RecordedRequest, 'application/x-www-form-urlencoded', formOf(refreshes[0] as RecordedRequest))

  const logins = emu.tokenRequests.filter((r) => r.path === API_KEY_TOKEN)
  assert.equal(logins.length, 2)
  const jtis: unknown[] = []
  for (const login of logins) {
    const body: unknown = JSON.parse(login.body.toString('utf8'))
    assertRequest(login, 'application/json', body)
    const jwt = (body as { jwt: string }).jwt
    assert.deepEqual(decodeProtectedHeader(jwt), { alg: 'HS256', typ: 'JWT' })
    // Verified with the shared secret, HS256 only.
    const { payload } = await jwtVerify(jwt, new TextEncoder().encode(sharedsecret), { algorithms: ['HS256'] })
    assert.equal(payload.appname, appname)
    assert.equal(payload.appkey, appkey)
    assert.equal(payload.shortname, shortname)
    assert.equal(typeof payload.iat, 'number')
    assert.ok(Math.abs((payload.iat as number) - login.at / 1000) <= 5, 'iat is the time of the request')
    assert.equal(typeof payload.jti, 'string')
    assert.notEqual(payload.jti, '')
    jtis.push(payload.jti)
  }
  assert.notEqual(jtis[0], jtis[1], 'two request tokens never share a jti')
})

test('the proxy\'s user login and refresh (netography-user.yaml) match the document', async (t) => {
  const clock = new SkewClock()
  const emu = await startSeedEmulator(t, () => startNetography())
  const env = { NETOGRAPHY_URL: emu.url, NETOGRAPHY_USERNAME: emu.credentials.username, NETOGRAPHY_PASSWORD: emu.credentials.password }
  const proxy = await startSeedProxy(t, 'netography-user', env, { now: clock.now })

  assert.equal((await call(`${proxy.url}/netography/api/v1/devices`)).status, 200)
  emu.revokeAll()
  clock.skip(1000)
  assert.equal((await call(`${proxy.url}/netography/api/v1/devices`)).status, 200)

  const login = emu.tokenRequests.filter((r) => r.path === USER_TOKEN)
  assert.equal(login.length, 1)
  assertRequest(login[0] as RecordedRequest, 'application/x-www-form-urlencoded', formOf(login[0] as RecordedRequest))
  const refresh = emu.tokenRequests.filter((r) => r.path === REFRESH)
  assert.equal(refresh.length, 1)
  assertRequest(refresh[0] as RecordedRequest, 'application/x-www-form-urlencoded', formOf(refresh[0] as RecordedRequest))
})
