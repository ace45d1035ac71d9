import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseConfig } from '../src/config/load.js'
import { AUTH_TYPES, type AuthConfig } from '../src/schemes/registry.js'
import { decodeJwt, jwtVerify } from 'jose'
import { clientAssertion, clientAssertionJwt, clientSecretBasic, clientSecretPost, publicClient, tlsClientAuth, type TokenRequestParts } from '../src/auth/client-auth.js'
import { secretSigningKey } from '../src/auth/keys.js'
import { clientAuthMethod, type ClientOptions, type ClientRole } from '../src/schemes/oauth-options.js'
import { parseIssues } from './config-helpers.js'

/**
 * Each scheme's options, parsed as a route's auth block: the defaults a user
 * relies on, the cross-field checks, and the key path of every mistake.
 */

const TOKEN_URL = 'https://idp.example/token'
const NETOSECRET = Buffer.from(JSON.stringify({ url: 'https://api.example/api/v1', shortname: 's', appname: 'a', appkey: 'k'.repeat(8), sharedsecret: 'x'.repeat(16) })).toString('base64')

function auth (block: Record<string, unknown>): AuthConfig {
  return parseConfig({ routes: { r: { upstream: 'https://api.example', auth: block } } }, { env: {} }).routes[0]?.auth as AuthConfig
}

function issues (block: Record<string, unknown>, route: Record<string, unknown> = { upstream: 'https://api.example' }): string[] {
  return parseIssues({ routes: { r: { ...route, auth: block } } })
}

test('every registered type parses from its minimal options, with the defaults of SPEC "auth types"', () => {
  const minimal: Record<string, Record<string, unknown>> = {
    static: { type: 'static', token: 'k-123456' },
    client_credentials: { type: 'client_credentials', tokenUrl: TOKEN_URL, clientId: 'c', clientSecret: 's-123456' },
    password: { type: 'password', tokenUrl: TOKEN_URL, username: 'u', password: 'p-123456' },
    refresh_token: { type: 'refresh_token', tokenUrl: TOKEN_URL, refreshToken: 'r-123456' },
    jwt_bearer: { type: 'jwt_bearer', tokenUrl: TOKEN_URL, secret: 'hmac-secret-123456' },
    login: { type: 'login', tokenUrl: TOKEN_URL },
    netography: { type: 'netography', netosecret: NETOSECRET },
    token_exchange: { type: 'token_exchange', tokenUrl: TOKEN_URL, subjectToken: 'subject-123456' },
    authorization_code: { type: 'authorization_code', issuer: 'https://as.example', clientId: 'c' },
    device_code: { type: 'device_code', issuer: 'https://as.example', clientId: 'c' }
  }
  assert.deepEqual([...AUTH_TYPES].sort(), Object.keys(minimal).sort(), 'a test row per registered type')
  for (const [type, block] of Object.entries(minimal)) {
    const parsed = auth(block)
    assert.equal(parsed.type, type)
    if ('timeout' in parsed) assert.equal(parsed.timeout, 10_000, `${type}: token timeout default`)
  }
  assert.deepEqual(auth(minimal.static as Record<string, unknown>), { type: 'static', token: 'k-123456', header: 'authorization', scheme: 'Bearer' })
  const cc = auth(minimal.client_credentials as Record<string, unknown>)
  assert.ok(cc.type === 'client_credentials')
  assert.equal(cc.bodyEncoding, 'form')
  assert.deepEqual(cc.params, {})
  const login = auth(minimal.login as Record<string, unknown>)
  assert.ok(login.type === 'login')
  assert.equal(login.bodyEncoding, 'json')
  assert.deepEqual(login.response, { accessToken: 'access_token', expiresIn: 'expires_in', refreshToken: 'refresh_token', refreshExpiresIn: 'refresh_expires_in' })
  const code = auth(minimal.authorization_code as Record<string, unknown>)
  assert.ok(code.type === 'authorization_code')
  assert.equal(code.redirectPort, 0)
  assert.equal(code.tokenUrl, undefined, 'read from the issuer\'s metadata')
  const jwt = auth(minimal.jwt_bearer as Record<string, unknown>)
  assert.ok(jwt.type === 'jwt_bearer')
  assert.equal(jwt.assertionTtl, 300)
  const exchange = auth(minimal.token_exchange as Record<string, unknown>)
  assert.ok(exchange.type === 'token_exchange')
  assert.equal(exchange.subjectTokenType, 'urn:ietf:params:oauth:token-type:jwt')
})

test('each mistake names its key under the route\'s auth block', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ type: 'nope' }, 'routes.r.auth.type: must be one of: static, client_credentials, password, refresh_token, jwt_bearer, login, netography, token_exchange, authorization_code, device_code'],
    [{ type: 'static' }, 'routes.r.auth.token: is required'],
    [{ type: 'static', token: 'a\r\nb' }, 'routes.r.auth.token: must not contain control characters or line breaks: it is sent in an HTTP header'],
    [{ type: 'client_credentials', tokenUrl: 'ftp://x', clientId: 'c', clientSecret: 's' }, 'routes.r.auth.tokenUrl: must be an absolute http(s) URL'],
    [{ type: 'client_credentials', tokenUrl: TOKEN_URL, clientSecret: 's' }, 'routes.r.auth.clientId: is required for client_secret_basic'],
    [{ type: 'client_credentials', tokenUrl: TOKEN_URL, clientId: 'c', clientAuth: 'client_secret_post' }, 'routes.r.auth.clientSecret: is required for client_secret_post'],
    [{ type: 'client_credentials', tokenUrl: TOKEN_URL, clientId: 'c', clientAuth: 'private_key_jwt' }, 'routes.r.auth.privateKey: is required for private_key_jwt'],
    [{ type: 'password', tokenUrl: TOKEN_URL, username: 'u' }, 'routes.r.auth.password: is required'],
    [{ type: 'refresh_token', tokenUrl: TOKEN_URL, refreshToken: '' }, 'routes.r.auth.refreshToken: must not be empty'],
    [{ type: 'jwt_bearer', tokenUrl: TOKEN_URL }, 'routes.r.auth.privateKey: privateKey or secret is required to sign the assertion'],
    [{ type: 'login', tokenUrl: TOKEN_URL, refresh: { url: 'nope' } }, 'routes.r.auth.refresh.url: must be an absolute http(s) URL'],
    [{ type: 'login', tokenUrl: TOKEN_URL, bodyEncoding: 'xml' }, 'routes.r.auth.bodyEncoding: Invalid option: expected one of "form"|"json"'],
    [{ type: 'netography', netosecret: 'not base64 json' }, 'routes.r.auth.netosecret: is not base64 of a JSON object'],
    [{ type: 'static', token: 't-123456', extra: 1 }, 'routes.r.auth.extra: unknown key'],
    [{ type: 'token_exchange', tokenUrl: TOKEN_URL }, 'routes.r.auth.subjectToken: is required'],
    [{ type: 'token_exchange', tokenUrl: TOKEN_URL, subjectToken: 's-123456', actorTokenType: 'urn:x:y' }, 'routes.r.auth.actorTokenType: is given without actorToken'],
    [{ type: 'token_exchange', tokenUrl: TOKEN_URL, subjectToken: 's-123456', subjectTokenType: 'jwt' }, 'routes.r.auth.subjectTokenType: must be a token type URI, e.g. urn:ietf:params:oauth:token-type:jwt'],
    [{ type: 'token_exchange', tokenUrl: TOKEN_URL, subjectToken: 's-123456', resource: 'orders' }, 'routes.r.auth.resource: must be an absolute URI without a fragment'],
    // clientAssertion: an assertion from elsewhere is private_key_jwt, alone.
    [{ type: 'client_credentials', tokenUrl: TOKEN_URL, clientAssertion: 'a.b.c', clientAuth: 'client_secret_basic', clientSecret: 's' }, 'routes.r.auth.clientAuth: cannot be client_secret_basic with clientAssertion (a client assertion is private_key_jwt)'],
    [{ type: 'client_credentials', tokenUrl: TOKEN_URL, clientId: 'c', clientAssertion: 'a.b.c', privateKey: 'PEM' }, 'routes.r.auth.clientAssertion: cannot be combined with privateKey: give the assertion, or the key that signs one'],
    [{ type: 'client_credentials', tokenUrl: TOKEN_URL, clientId: 'c', clientAssertion: 'a.b.c', clientSecret: 's' }, 'routes.r.auth.clientAssertion: cannot be combined with clientSecret: the assertion authenticates the client'],
    // RFC 8705: a certificate is needed, from the auth block or the route.
    [{ type: 'client_credentials', tokenUrl: TOKEN_URL, clientId: 'c', clientAuth: 'tls_client_auth' }, 'routes.r.auth.tls: needs cert and key for tls_client_auth (here or in the route\'s tls)'],
    [{ type: 'client_credentials', tokenUrl: TOKEN_URL, clientAuth: 'self_signed_tls_client_auth' }, 'routes.r.auth.clientId: is required for self_signed_tls_client_auth'],
    [{ type: 'client_credentials', clientId: 'c', clientSecret: 's' }, 'routes.r.auth.tokenUrl: is required (or issuer, to read it from the authorization server\'s metadata)'],
    [{ type: 'authorization_code', tokenUrl: TOKEN_URL }, 'routes.r.auth.clientId: is required'],
    [{ type: 'authorization_code', tokenUrl: TOKEN_URL, clientId: 'c' }, 'routes.r.auth.authorizationUrl: is required (or issuer, to read it from the authorization server\'s metadata)'],
    [{ type: 'authorization_code', issuer: 'https://as.example', clientId: 'c', redirectPort: 70000 }, 'routes.r.auth.redirectPort: Too big: expected number to be <=65535'],
    [{ type: 'device_code', issuer: 'https://as.example', clientId: 'c', dpop: true }, 'routes.r.auth.dpop.key: is required for a user login: the login command and serve must sign with the same key'],
    [{ type: 'device_code', tokenUrl: TOKEN_URL, clientId: 'c' }, 'routes.r.auth.deviceAuthorizationUrl: is required (or issuer, to read it from the authorization server\'s metadata)']
  ]
  for (const [block, expected] of cases) {
    const found = issues(block)
    assert.ok(found.includes(expected), `${JSON.stringify(block)} gave: ${found.join(' | ')}`)
  }
})

test('a route without upstream is refused unless its scheme names the API (netography)', () => {
  assert.deepEqual(issues({ type: 'static', token: 't-123456' }, {}), ['routes.r.upstream: is required'])
  const config = parseConfig({ routes: { n: { auth: { type: 'netography', netosecret: NETOSECRET } } } }, { env: {} })
  assert.equal(config.routes[0]?.upstream, 'https://api.example')
})

test('the client authentication follows from the options given when clientAuth is not set', () => {
  const rows: Array<[Record<string, unknown>, ClientRole, string]> = [
    [{ clientId: 'c', clientSecret: 's' }, {}, 'client_secret_basic'],
    [{ clientId: 'c', clientSecret: 's', bodyEncoding: 'json' }, {}, 'client_secret_post'],
    [{ clientId: 'c', privateKey: 'PEM' }, {}, 'private_key_jwt'],
    [{ clientId: 'c' }, {}, 'none'],
    [{ clientId: 'c', clientSecret: 's', clientAuth: 'client_secret_jwt' }, {}, 'client_secret_jwt'],
    // jwt_bearer: the key signs the grant, not the client.
    [{ clientId: 'c', privateKey: 'PEM' }, { keySignsGrant: true }, 'none'],
    [{ clientId: 'c', clientSecret: 's', privateKey: 'PEM' }, { keySignsGrant: true }, 'client_secret_basic'],
    // An assertion from elsewhere is what private_key_jwt sends, whatever signs the grant.
    [{ clientAssertion: 'a.b.c' }, {}, 'private_key_jwt'],
    [{ clientAssertion: 'a.b.c', privateKey: 'PEM' }, { keySignsGrant: true }, 'private_key_jwt'],
    [{ clientId: 'c', clientAuth: 'tls_client_auth' }, {}, 'tls_client_auth']
  ]
  for (const [options, role, method] of rows) {
    assert.equal(clientAuthMethod({ tokenUrl: TOKEN_URL, bodyEncoding: 'form', params: {}, timeout: 1, ...options } as ClientOptions, role), method, JSON.stringify(options))
  }
})

test('client authentication factories add exactly their credentials', async () => {
  const parts = (): TokenRequestParts => ({ body: { grant_type: 'client_credentials' }, headers: {} })
  const basic = parts()
  await clientSecretBasic('id:with space', 'p@ss/word+')(basic, TOKEN_URL)
  // RFC 6749 §2.3.1: each part form-urlencoded before base64.
  assert.equal(Buffer.from((basic.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString(), 'id%3Awith+space:p%40ss%2Fword%2B')
  assert.deepEqual(basic.body, { grant_type: 'client_credentials' })

  const post = parts()
  await clientSecretPost('id', 'secret')(post, TOKEN_URL)
  assert.deepEqual(post, { body: { grant_type: 'client_credentials', client_id: 'id', client_secret: 'secret' }, headers: {} })

  const open = parts()
  await publicClient('id')(open, TOKEN_URL)
  assert.deepEqual(open.body, { grant_type: 'client_credentials', client_id: 'id' })
  const anonymous = parts()
  await publicClient(undefined)(anonymous, TOKEN_URL)
  assert.deepEqual(anonymous.body, { grant_type: 'client_credentials' })

  const key = secretSigningKey('a-shared-secret-of-32-bytes-long!')
  const first = parts()
  const second = parts()
  await clientAssertionJwt('id', key)(first, TOKEN_URL)
  await clientAssertionJwt('id', key)(second, TOKEN_URL)
  assert.equal(first.body.client_assertion_type, 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer')
  const { payload } = await jwtVerify(first.body.client_assertion ?? '', key.key, { audience: TOKEN_URL, issuer: 'id', subject: 'id' })
  assert.ok(typeof payload.exp === 'number' && typeof payload.iat === 'number' && payload.exp - payload.iat <= 60, 'short-lived')
  const again = decodeJwt(second.body.client_assertion ?? '')
  assert.notEqual(again.jti, payload.jti, 'a fresh jti for every request')

  // A client assertion from elsewhere: whatever `read` gives at each request.
  let current = 'first.assertion.jwt'
  const fromFile = clientAssertion(undefined, () => current)
  const a = parts()
  await fromFile(a, TOKEN_URL)
  current = 'second.assertion.jwt'
  const b = parts()
  await fromFile(b, TOKEN_URL)
  assert.deepEqual(a.body, { grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: 'first.assertion.jwt' })
  assert.equal(b.body.client_assertion, 'second.assertion.jwt')

  // RFC 8705: the certificate authenticates; the body names the client.
  const mtls = parts()
  await tlsClientAuth('id')(mtls, TOKEN_URL)
  assert.deepEqual(mtls, { body: { grant_type: 'client_credentials', client_id: 'id' }, headers: {} })
})
