/* eslint-disable no-template-curly-in-string -- config secret references are literal "${...}" text */
import { after, before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { ROOT, runCli, tempDir } from './cli-helpers.js'
import { sendJson, tokenServer } from './helpers.js'
import { startOidcProvider, type OidcFixture } from './fixtures/oidc-provider.js'

// The CLI runs in a child process; the provider runs here, so runCli must not block the event loop.
let oidc: OidcFixture

const WRONG_SECRET = 'wrong-secret-CANARY-c1i-5d9e'
/** Anything shaped like a JWS: header.payload.signature in base64url. */
const JWT_LIKE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/

function writeConfig (t: TestContext, withBadRoute: boolean): { file: string, env: NodeJS.ProcessEnv } {
  const dir = tempDir(t)
  const file = join(dir, 'cfg.yaml')
  const lines = [
    'routes:',
    '  alpha:',
    '    upstream: http://127.0.0.1:9/alpha',
    '    auth:',
    '      type: client_credentials',
    `      tokenUrl: ${oidc.tokenUrl}`,
    `      clientId: ${oidc.clients.basic.clientId}`,
    // One secret inline, one from the environment: neither may be printed.
    `      clientSecret: ${oidc.clients.basic.clientSecret}`,
    '  beta:',
    '    prefix: /b',
    '    upstream: http://127.0.0.1:9/beta',
    '    auth:',
    '      type: client_credentials',
    `      tokenUrl: ${oidc.tokenUrl}`,
    `      clientId: ${oidc.clients.post.clientId}`,
    '      clientSecret: ${env:BETA_SECRET}',
    '      clientAuth: client_secret_post'
  ]
  if (withBadRoute) {
    lines.push(
      '  gamma:',
      '    upstream: http://127.0.0.1:9/gamma',
      '    auth:',
      '      type: client_credentials',
      `      tokenUrl: ${oidc.tokenUrl}`,
      `      clientId: ${oidc.clients.basic.clientId}`,
      `      clientSecret: ${WRONG_SECRET}`
    )
  }
  writeFileSync(file, `${lines.join('\n')}\n`)
  return { file, env: { BETA_SECRET: oidc.clients.post.clientSecret } }
}

function assertNoSecrets (text: string): void {
  for (const secret of [oidc.clients.basic.clientSecret, oidc.clients.post.clientSecret, WRONG_SECRET]) {
    assert.ok(!text.includes(secret), 'a client secret was printed')
  }
  assert.doesNotMatch(text, JWT_LIKE, 'something like a token was printed')
}

/** A check line: name, prefix, auth type, ok/error, detail. */
function parseLine (line: string): string[] {
  const fields = line.split('\t')
  assert.equal(fields.length, 5, `five tab-separated fields: ${JSON.stringify(line)}`)
  return fields
}

function assertOkLine (line: string, name: string, prefix: string): void {
  const [n, p, type, status, detail] = parseLine(line)
  assert.deepEqual([n, p, type, status], [name, prefix, 'client_credentials', 'ok'])
  const seconds = Number(/^expires in (\d+)s$/.exec(detail ?? '')?.[1])
  // The fixture's tokens live 300 s.
  assert.ok(seconds > 280 && seconds <= 300, `seconds to expiry: ${detail}`)
}

// Each case spawns its own CLI process and writes its own files: a few run side by side.
describe('bearer-proxy check and token', { concurrency: 3 }, () => {
  before(async () => { oidc = await startOidcProvider() })
  after(() => oidc.close())

  test('check: one line per route, exit 1 when one fails, no secret or token printed', async (t) => {
    const { file, env } = writeConfig(t, true)
    const result = await runCli(['check', '-c', file], { env })
    assert.equal(result.code, 1, result.stderr)
    const lines = result.stdout.trimEnd().split('\n')
    assert.equal(lines.length, 3, result.stdout)
    assertOkLine(lines[0] as string, 'alpha', '/alpha')
    assertOkLine(lines[1] as string, 'beta', '/b')
    const [name, prefix, type, status, detail] = parseLine(lines[2] as string)
    assert.deepEqual([name, prefix, type, status], ['gamma', '/gamma', 'client_credentials', 'error'])
    assert.match(detail as string, /invalid_client/)
    assertNoSecrets(result.stdout + result.stderr)
    // Every route really asked the provider.
    assert.equal(oidc.tokenRequests().log.filter((r) => r.grantType === 'client_credentials').length >= 3, true)
  })

  test('check: exit 0 when every route gets a token', async (t) => {
    const { file, env } = writeConfig(t, false)
    const result = await runCli(['check', '-c', file], { env })
    assert.equal(result.code, 0, result.stderr)
    const lines = result.stdout.trimEnd().split('\n')
    assert.equal(lines.length, 2)
    assertOkLine(lines[0] as string, 'alpha', '/alpha')
    assertOkLine(lines[1] as string, 'beta', '/b')
    assertNoSecrets(result.stdout + result.stderr)
  })

  test('check --json: an array with one object per route, the same exit code, no secret or token', async (t) => {
    const { file, env } = writeConfig(t, true)
    const result = await runCli(['check', '-c', file, '--json'], { env })
    assert.equal(result.code, 1, result.stderr)
    const routes = JSON.parse(result.stdout) as Array<{ name: string, prefix: string, type: string, ok: boolean, expiresIn: number | null, error: string | null }>
    assert.deepEqual(routes.map((r) => Object.keys(r)), Array(3).fill(['name', 'prefix', 'type', 'ok', 'expiresIn', 'error']))
    assert.deepEqual(routes.map((r) => [r.name, r.prefix, r.type, r.ok]), [['alpha', '/alpha', 'client_credentials', true], ['beta', '/b', 'client_credentials', true], ['gamma', '/gamma', 'client_credentials', false]])
    for (const ok of routes.slice(0, 2)) {
      assert.ok(ok.expiresIn !== null && ok.expiresIn > 280 && ok.expiresIn <= 300, `expiresIn ${ok.expiresIn}`)
      assert.equal(ok.error, null)
    }
    assert.equal(routes[2]?.expiresIn, null)
    assert.match(routes[2]?.error ?? '', /invalid_client/)
    assertNoSecrets(result.stdout + result.stderr)

    const good = writeConfig(t, false)
    const passing = await runCli(['check', '-c', good.file, '--json'], { env: good.env })
    assert.equal(passing.code, 0, passing.stderr)
    assert.deepEqual((JSON.parse(passing.stdout) as Array<{ ok: boolean }>).map((r) => r.ok), [true, true])
  })

  test('token ROUTE prints exactly one line: a JWT the provider signed', async (t) => {
    const { file, env } = writeConfig(t, true)
    const result = await runCli(['token', 'beta', '-c', file], { env })
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stderr, '')
    assert.match(result.stdout, /^[^\n]+\n$/, 'one line')
    const token = result.stdout.trimEnd()
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(oidc.jwksUrl)), { issuer: oidc.issuer, audience: oidc.audience })
    assert.equal(payload.client_id, oidc.clients.post.clientId)
  })

  test('token ROUTE with refused credentials: exit 1, nothing on stdout, no secret', async (t) => {
    const { file, env } = writeConfig(t, true)
    const result = await runCli(['token', 'gamma', '-c', file], { env })
    assert.equal(result.code, 1)
    assert.equal(result.stdout, '')
    assert.match(result.stderr, /invalid_client/)
    assertNoSecrets(result.stderr)
  })

  test('token with an unknown route: exit 2, nothing on stdout', async (t) => {
    const { file, env } = writeConfig(t, true)
    const result = await runCli(['token', 'nosuch', '-c', file], { env })
    assert.equal(result.code, 2)
    assert.equal(result.stdout, '')
    assert.match(result.stderr, /nosuch/)
  })

  test('token without a route name: exit 2 with the usage', async (t) => {
    const { file, env } = writeConfig(t, true)
    const result = await runCli(['token', '-c', file], { env })
    assert.equal(result.code, 2)
    assert.equal(result.stdout, '')
    assert.match(result.stderr, /Usage:/)
  })

  test('check: seconds to expiry never exceed the lifetime, even from a slow token endpoint', async (t) => {
    // The answer comes 1.5 s after the request: counting from before the request would print 61 s.
    const slow = await tokenServer(t, (_call, _n, res) => {
      setTimeout(() => sendJson(res, 200, { access_token: 'opaque-token-value', token_type: 'Bearer', expires_in: 60 }), 1500)
    })
    const file = join(tempDir(t), 'slow.yaml')
    writeFileSync(file, `routes:\n  slow:\n    upstream: http://127.0.0.1:9\n    auth: { type: client_credentials, tokenUrl: "${slow.tokenUrl}", clientId: c, clientSecret: s3cret-value }\n`)
    const result = await runCli(['check', '-c', file])
    assert.equal(result.code, 0, result.stderr)
    const [, , , status, detail] = parseLine(result.stdout.trimEnd())
    assert.equal(status, 'ok')
    const seconds = Number(/^expires in (\d+)s$/.exec(detail ?? '')?.[1])
    assert.ok(seconds >= 55 && seconds <= 60, `seconds to expiry: ${detail}`)
  })

  test('--version prints the package version; --help prints the usage', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
    const [version, help] = await Promise.all([runCli(['--version']), runCli(['--help'])])
    assert.equal(version.code, 0)
    assert.equal(version.stdout, `${pkg.version}\n`)
    assert.equal(help.code, 0)
    assert.match(help.stdout, /Usage:/)
    for (const command of ['check', 'token', 'demo']) assert.match(help.stdout, new RegExp(`bearer-proxy ${command}`))
  })
})

test('token and check start from stateDir: a stored token is reused, a rotated refresh token is never spent twice', async (t) => {
  const sent: string[] = []
  // Rotates the refresh token on every use and refuses any but the latest.
  let latest = 'rt-seed-CANARY-7f3a'
  const tokens = await tokenServer(t, (call, n, res) => {
    const presented = call.form.get('refresh_token') ?? ''
    sent.push(presented)
    if (presented !== latest) return sendJson(res, 400, { error: 'invalid_grant' })
    latest = `rt-${n}`
    sendJson(res, 200, { access_token: `access-${n}`, expires_in: 3600, refresh_token: latest })
  })
  const dir = tempDir(t)
  const file = join(dir, 'cfg.yaml')
  writeFileSync(file, [
    'stateDir: ./state',
    'routes:',
    '  r:',
    '    upstream: http://127.0.0.1:9/',
    '    auth:',
    '      type: refresh_token',
    `      tokenUrl: ${tokens.tokenUrl}`,
    '      clientId: cli-client',
    '      clientSecret: cli-secret-1234',
    '      refreshToken: rt-seed-CANARY-7f3a'
  ].join('\n'))

  const first = await runCli(['token', 'r', '-c', file])
  assert.equal(first.code, 0, first.stderr)
  assert.equal(first.stdout.trim(), 'access-1')
  const second = await runCli(['token', 'r', '-c', file])
  assert.equal(second.stdout.trim(), 'access-1', 'the stored token is reused')
  const checked = await runCli(['check', '-c', file])
  assert.equal(checked.code, 0, checked.stdout + checked.stderr)
  assert.deepEqual(sent, ['rt-seed-CANARY-7f3a'], 'one token request in all; the seed refresh token was spent once')
})
