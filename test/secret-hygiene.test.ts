import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { exportJWK, exportPKCS8, generateKeyPair } from 'jose'
import { buildAdminApp } from '../src/admin/app.js'
import { createLogger } from '../src/logger.js'
import { listen, recordingUpstream, sendJson, startProxy, tokenServer, type TokenCall } from './helpers.js'

/** A value that cannot appear by accident. */
function canary (label: string): string {
  return `CANARY-${label}-${randomBytes(9).toString('base64url').replace(/[-_]/g, 'x')}`
}

function basicOf (header: string | undefined): string {
  return Buffer.from((header ?? '').replace(/^Basic /, ''), 'base64').toString('utf8')
}

interface Issued {
  access: string[]
  refresh: string[]
}

/**
 * A token endpoint that checks the credentials with `check` (an error
 * description, or undefined when they are right) and issues unique tokens,
 * rotating refresh tokens when `refresh` is on. Every token it issues is
 * collected in `issued`.
 */
async function issuer (t: TestContext, issued: Issued, label: string, check: (call: TokenCall) => string | undefined, refresh = false) {
  return tokenServer(t, (call, _n, res) => {
    const problem = check(call)
    if (problem !== undefined) return sendJson(res, 400, { error: 'invalid_grant', error_description: problem })
    const access = canary(`issued-${label}`)
    const body: Record<string, unknown> = { access_token: access, token_type: 'Bearer', expires_in: 3600 }
    issued.access.push(access)
    if (refresh) {
      body.refresh_token = canary(`issued-refresh-${label}`)
      issued.refresh.push(body.refresh_token as string)
    }
    sendJson(res, 200, body)
  })
}

test('no secret, token or client credential appears in any log line or error body', async (t) => {
  const issued: Issued = { access: [], refresh: [] }
  const secrets = {
    basicSecret: canary('basic-secret'),
    postSecret: canary('post-secret'),
    password: canary('password'),
    passwordClientSecret: canary('password-client-secret'),
    staticToken: canary('static-token'),
    refreshToken: canary('refresh-token'),
    refreshClientSecret: canary('refresh-client-secret'),
    jwtSecret: canary('jwt-bearer-secret'),
    rejectedSecret: canary('rejected-secret'),
    rejectedPassword: canary('rejected-password'),
    rejectedRefresh: canary('rejected-refresh'),
    failingSecret: canary('failing-secret'),
    downSecret: canary('down-secret'),
    clientBearer: canary('client-bearer'),
    proxyKey: canary('proxy-key'),
    wrongProxyKey: canary('wrong-proxy-key'),
    cookie: canary('cookie'),
    query: canary('query')
  }
  const key = await generateKeyPair('RS256', { extractable: true })
  const privateKeyPem = await exportPKCS8(key.privateKey)
  const privateJwk = await exportJWK(key.privateKey)

  // Token endpoints that check what they get, so every scheme really authenticates.
  const basicEndpoint = await issuer(t, issued, 'basic', (c) => basicOf(c.headers.authorization) === `basic-client:${secrets.basicSecret}` ? undefined : 'bad basic')
  const postEndpoint = await issuer(t, issued, 'post', (c) => c.form.get('client_secret') === secrets.postSecret ? undefined : 'bad post')
  let currentRefresh = secrets.refreshToken
  let refreshRevoked = false
  const refreshEndpoint = await tokenServer(t, (call, _n, res) => {
    const sent = call.form.get('refresh_token')
    // Revoked: the endpoint echoes whatever refresh token it got, as some servers do.
    if (refreshRevoked || sent !== currentRefresh) return sendJson(res, 400, { error: 'invalid_grant', error_description: `refresh token ${sent ?? ''} is revoked` })
    currentRefresh = canary('issued-refresh-rotated')
    const access = canary('issued-refresh-access')
    issued.access.push(access)
    issued.refresh.push(currentRefresh)
    sendJson(res, 200, { access_token: access, token_type: 'Bearer', expires_in: 3600, refresh_token: currentRefresh })
  })
  const passwordEndpoint = await issuer(t, issued, 'password', (c) => {
    if (c.form.get('grant_type') === 'refresh_token') return undefined
    return c.form.get('password') === secrets.password ? undefined : 'bad password'
  }, true)
  const pkEndpoint = await issuer(t, issued, 'pkjwt', (c) => c.form.get('client_assertion')?.split('.').length === 3 ? undefined : 'no assertion')
  const jwtEndpoint = await issuer(t, issued, 'jwtb', (c) => c.form.get('assertion')?.split('.').length === 3 ? undefined : 'no assertion')
  // Refusals that echo the very credential they refuse, in the description and elsewhere.
  const echoingEndpoint = await tokenServer(t, (call, _n, res) => {
    const echoed = [basicOf(call.headers.authorization), call.form.get('password'), call.form.get('refresh_token'), call.form.get('client_secret')].filter(Boolean).join(' / ')
    sendJson(res, 401, { error: 'invalid_client', error_description: `wrong credentials: ${echoed}`, message: echoed })
  })
  const failingEndpoint = await tokenServer(t, (call, _n, res) => {
    sendJson(res, 500, { error: 'server_error', error_description: `stack trace with ${basicOf(call.headers.authorization)}` })
  })

  // One upstream that refuses the first request on /api/once (the token is dropped and the request replayed).
  let refusedOnce = false
  const upstream = await recordingUpstream(t, (req, res) => {
    if (req.url.includes('/once') && !refusedOnce) {
      refusedOnce = true
      return sendJson(res, 401, { error: 'token expired' })
    }
    sendJson(res, 200, { ok: true })
  })
  // A port with nothing listening: connection refused.
  const gone = await listen(t, () => {})
  await new Promise<void>((resolve) => gone.server.close(() => resolve()))

  const cc = (tokenUrl: string, extra: Record<string, unknown>) => ({ type: 'client_credentials', tokenUrl, ...extra })
  let clock = Date.now()
  const proxy = await startProxy(t, {
    security: { clientKey: secrets.proxyKey },
    routes: {
      static: { upstream: upstream.url, auth: { type: 'static', token: secrets.staticToken } },
      basic: { upstream: upstream.url, auth: cc(basicEndpoint.tokenUrl, { clientId: 'basic-client', clientSecret: secrets.basicSecret }) },
      post: { upstream: upstream.url, auth: cc(postEndpoint.tokenUrl, { clientId: 'post-client', clientSecret: secrets.postSecret, clientAuth: 'client_secret_post' }) },
      password: { upstream: upstream.url, auth: { type: 'password', tokenUrl: passwordEndpoint.tokenUrl, clientId: 'pw-client', clientSecret: secrets.passwordClientSecret, username: 'user', password: secrets.password } },
      refresh: { upstream: upstream.url, auth: { type: 'refresh_token', tokenUrl: refreshEndpoint.tokenUrl, clientId: 'rt-client', clientSecret: secrets.refreshClientSecret, refreshToken: secrets.refreshToken } },
      pkjwt: { upstream: upstream.url, auth: cc(pkEndpoint.tokenUrl, { clientId: 'pk-client', privateKey: privateKeyPem }) },
      jwtb: { upstream: upstream.url, auth: { type: 'jwt_bearer', tokenUrl: jwtEndpoint.tokenUrl, secret: secrets.jwtSecret, claims: { iss: 'me', sub: 'me' } } },
      rejected: { upstream: upstream.url, auth: cc(echoingEndpoint.tokenUrl, { clientId: 'rejected-client', clientSecret: secrets.rejectedSecret }) },
      rejectedPassword: { upstream: upstream.url, auth: { type: 'password', tokenUrl: echoingEndpoint.tokenUrl, clientId: 'x', clientSecret: secrets.rejectedSecret, username: 'u', password: secrets.rejectedPassword } },
      rejectedRefresh: { upstream: upstream.url, auth: { type: 'refresh_token', tokenUrl: echoingEndpoint.tokenUrl, clientId: 'x', clientSecret: secrets.rejectedSecret, refreshToken: secrets.rejectedRefresh } },
      failing: { upstream: upstream.url, auth: cc(failingEndpoint.tokenUrl, { clientId: 'failing-client', clientSecret: secrets.failingSecret }) },
      down: { upstream: gone.url, auth: cc(basicEndpoint.tokenUrl, { clientId: 'basic-client', clientSecret: secrets.basicSecret }) },
      downStatic: { upstream: gone.url, auth: { type: 'static', token: secrets.downSecret } }
    }
  }, { now: () => clock })

  const clientHeaders = {
    authorization: `Bearer ${secrets.clientBearer}`,
    'x-proxy-key': secrets.proxyKey,
    cookie: `session=${secrets.cookie}; theme=dark`
  }
  const errorBodies: string[] = []
  let requestCount = 0
  const statuses: Record<string, number[]> = {}
  async function call (route: string, path = '/api/data', headers: Record<string, string> = clientHeaders): Promise<void> {
    const res = await fetch(`${proxy.url}/${route}${path}?access_token=${secrets.query}&x=1`, { headers })
    const text = await res.text()
    requestCount++
    ;(statuses[route] ??= []).push(res.status)
    if (res.status >= 400) errorBodies.push(text)
  }

  const routes = ['static', 'basic', 'post', 'password', 'refresh', 'pkjwt', 'jwtb', 'rejected', 'rejectedPassword', 'rejectedRefresh', 'failing', 'down', 'downStatic']
  for (const route of routes) await call(route)
  await call('basic', '/once')
  await call('static', '/api/data', { ...clientHeaders, 'x-proxy-key': secrets.wrongProxyKey })
  // Two hours later: renewals, the refresh route's rotated token now refused (and echoed), a private key again.
  clock += 2 * 3600_000
  refreshRevoked = true
  for (const route of ['basic', 'password', 'refresh', 'pkjwt', 'jwtb']) await call(route)
  // The private key is also accepted as a JWK; build one more proxy to exercise that path.
  const jwkProxy = await startProxy(t, { routes: { pk: { upstream: upstream.url, auth: cc(pkEndpoint.tokenUrl, { clientId: 'pk-client', privateKey: privateJwk }) } } })
  const jwkRes = await fetch(`${jwkProxy.url}/pk/x`, { headers: { authorization: `Bearer ${secrets.clientBearer}` } })
  assert.equal(jwkRes.status, 200)
  await jwkRes.arrayBuffer()

  // Request lines are written when each response finishes: wait for all of them, bounded.
  const requestLines = (): number => proxy.logs.raw.filter((l) => l.includes('"msg":"request"')).length
  for (let i = 0; i < 200 && requestLines() < requestCount; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.equal(requestLines(), requestCount)

  // What the admin port shows is checked too.
  const admin = await buildAdminApp(() => proxy, createLogger({ level: 'silent' }))
  t.after(() => admin.close())
  const adminBodies = await Promise.all(['/routes', '/metrics', '/readyz'].map(async (url) => (await admin.inject({ url })).body))

  // The session did what it was meant to: good routes worked, each failure kind happened.
  for (const route of ['static', 'post', 'pkjwt', 'jwtb']) assert.equal(statuses[route]?.[0], 200, route)
  assert.deepEqual(statuses.basic?.slice(0, 2), [200, 200])
  assert.deepEqual(statuses.password, [200, 200])
  assert.equal(statuses.refresh?.[0], 200)
  const codes = errorBodies.map((b) => (JSON.parse(b) as { error: { code: string } }).error.code)
  for (const code of ['TOKEN_REJECTED', 'TOKEN_UNAVAILABLE', 'UPSTREAM_UNAVAILABLE']) assert.ok(codes.includes(code), `${code} in ${codes.join(', ')}`)
  assert.ok(passwordEndpoint.calls.some((c) => c.form.get('grant_type') === 'refresh_token'), 'the password route renewed with its refresh token')
  assert.ok(refreshEndpoint.calls.length >= 2, 'the refresh route tried its rotated token')
  assert.ok(refusedOnce, 'a request was refused and replayed')
  assert.ok(issued.access.length >= 10)
  const logLines = proxy.logs.raw.concat(jwkProxy.logs.raw)
  assert.ok(logLines.some((l) => l.includes('token_failed')) && logLines.some((l) => l.includes('"msg":"request"')))

  // The private key shows neither as PEM lines nor as its JWK private parts.
  const keyParts = [
    ...privateKeyPem.split('\n').filter((line) => line.length >= 40),
    ...(['d', 'p', 'q', 'dp', 'dq', 'qi'] as const).map((k) => privateJwk[k] as string)
  ]
  const places: Array<[string, string]> = [
    ...logLines.map((line, i): [string, string] => [`log line ${i}`, line]),
    ...errorBodies.map((body, i): [string, string] => [`error body ${i}`, body]),
    ...adminBodies.map((body, i): [string, string] => [`admin answer ${i}`, body])
  ]
  function leaksOf (forbidden: Array<[string, string]>): string[] {
    const leaks: string[] = []
    for (const [where, text] of places) {
      for (const [name, value] of forbidden) if (text.includes(value)) leaks.push(`${name} in ${where}: ${text.slice(0, 300)}`)
    }
    return leaks
  }
  const { clientBearer, proxyKey, wrongProxyKey, cookie, query, ...configured } = secrets

  // One subtest per kind of value, so a leak of one kind does not hide the others.
  await t.test('the client\'s own credentials, cookies and query values', () => {
    assert.deepEqual(leaksOf(Object.entries({ clientBearer, proxyKey, wrongProxyKey, cookie, query })), [])
  })
  await t.test('issued access tokens', () => {
    assert.deepEqual(leaksOf(issued.access.map((v, i) => [`access token #${i}`, v])), [])
  })
  await t.test('issued refresh tokens', () => {
    assert.deepEqual(leaksOf(issued.refresh.map((v, i) => [`refresh token #${i}`, v])), [])
  })
  await t.test('configured secrets, even when a refusing token endpoint echoes them', () => {
    assert.deepEqual(leaksOf([...Object.entries(configured), ...keyParts.map((part, i): [string, string] => [`private key part #${i}`, part])]), [])
  })
})
