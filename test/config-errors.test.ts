/* eslint-disable no-template-curly-in-string -- config secret references are literal "${...}" text */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfigFile, parseConfig } from '../src/config/load.js'
import { runCli, tempDir } from './cli-helpers.js'
import { issuesOf } from './config-helpers.js'

const UPSTREAM = 'http://127.0.0.1:9/'
const staticAuth = { type: 'static', token: 'static-token-value' }

function route (auth: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { upstream: UPSTREAM, auth, ...extra }
}

test('a bad tokenUrl names its key path', () => {
  const issues = issuesOf(() => parseConfig({ routes: { x: route({ type: 'client_credentials', tokenUrl: 'auth.example.com/token', clientId: 'a', clientSecret: 'b' }) } }))
  assert.deepEqual(issues, ['routes.x.auth.tokenUrl: must be an absolute http(s) URL'])
})

test('a tokenUrl with another scheme is refused too', () => {
  const issues = issuesOf(() => parseConfig({ routes: { x: route({ type: 'client_credentials', tokenUrl: 'ftp://127.0.0.1/token', clientId: 'a', clientSecret: 'b' }) } }))
  assert.deepEqual(issues, ['routes.x.auth.tokenUrl: must be an absolute http(s) URL'])
})

test('an unknown auth type names routes.NAME.auth.type and the known types', () => {
  const issues = issuesOf(() => parseConfig({ routes: { x: route({ type: 'kerberos' }) } }))
  assert.equal(issues.length, 1)
  assert.match(issues[0] as string, /^routes\.x\.auth\.type: /)
  for (const type of ['static', 'client_credentials', 'password', 'refresh_token', 'jwt_bearer']) assert.ok(issues[0]?.includes(type), type)
})

test('an unknown key (a typo) is named with its full path', () => {
  assert.deepEqual(issuesOf(() => parseConfig({ routes: { x: route({ ...staticAuth, tokne: 'x' }) } })), ['routes.x.auth.tokne: unknown key'])
  assert.deepEqual(issuesOf(() => parseConfig({ routes: { x: route(staticAuth, { upstrem: UPSTREAM }) } })), ['routes.x.upstrem: unknown key'])
  assert.deepEqual(issuesOf(() => parseConfig({ listn: { port: 1 }, routes: { x: route(staticAuth) } })), ['listn: unknown key'])
})

test('a missing required field is named', () => {
  const issues = issuesOf(() => parseConfig({ routes: { vivacity: route({ type: 'password', tokenUrl: 'http://127.0.0.1:9/token', username: 'u' }) } }))
  assert.deepEqual(issues, ['routes.vivacity.auth.password: is required'])
  assert.deepEqual(issuesOf(() => parseConfig({ routes: { x: { auth: staticAuth } } })), ['routes.x.upstream: is required'])
})

test('a duplicate prefix names the second route and the first', () => {
  const issues = issuesOf(() => parseConfig({ routes: { a: route(staticAuth, { prefix: '/api' }), b: route(staticAuth, { prefix: '/api' }) } }))
  assert.equal(issues.length, 1)
  assert.match(issues[0] as string, /^routes\.b\.prefix: .*"\/api".*"a"/)
})

test('a duplicate prefix also counts the default "/" + name', () => {
  const issues = issuesOf(() => parseConfig({ routes: { api: route(staticAuth), other: route(staticAuth, { prefix: '/api' }) } }))
  assert.equal(issues.length, 1)
  assert.match(issues[0] as string, /^routes\.other\.prefix: /)
})

test('a bad listen.port is named', () => {
  for (const port of [70000, -1, 'abc', 80.5]) {
    const issues = issuesOf(() => parseConfig({ listen: { port }, routes: { x: route(staticAuth) } }))
    assert.equal(issues.length, 1, String(port))
    assert.match(issues[0] as string, /^listen\.port: /, String(port))
  }
})

test('a missing ${env:NAME} names the key path and the variable, never any value', () => {
  const canary = 'CANARY-env-value-4d1f8a'
  const env = { OTHER_SECRET: canary }
  const raw = {
    routes: {
      x: route({ type: 'client_credentials', tokenUrl: 'http://127.0.0.1:9/token', clientId: '${env:OTHER_SECRET}', clientSecret: '${env:MISSING_SECRET}' })
    }
  }
  const issues = issuesOf(() => parseConfig(raw, { env }))
  assert.equal(issues.length, 1)
  assert.match(issues[0] as string, /^routes\.x\.auth\.clientSecret: .*MISSING_SECRET/)
  assert.ok(!issues.join('\n').includes(canary))

  // `${NAME}` is the same as `${env:NAME}`.
  const short = issuesOf(() => parseConfig({ routes: { x: route({ type: 'static', token: 'Bearer ${API_KEY}' }) } }, { env }))
  assert.equal(short.length, 1)
  assert.match(short[0] as string, /^routes\.x\.auth\.token: .*API_KEY/)
})

test('a resolved value that is invalid is not echoed in the message', () => {
  const canary = 'CANARY-not-a-url-5e2b'
  const issues = issuesOf(() => parseConfig({ routes: { x: route({ type: 'client_credentials', tokenUrl: '${env:TOKEN_URL}', clientId: 'a', clientSecret: 'b' }) } }, { env: { TOKEN_URL: canary } }))
  assert.deepEqual(issues, ['routes.x.auth.tokenUrl: must be an absolute http(s) URL'])
  const wrongType = issuesOf(() => parseConfig({ routes: { x: route({ type: 'static', token: 'x', scheme: 12345678 }) } }))
  assert.equal(wrongType.length, 1)
  assert.match(wrongType[0] as string, /^routes\.x\.auth\.scheme: /)
  assert.ok(!wrongType[0]?.includes('12345678'))
})

test('a missing ${file:...} names the key path and the file', (t) => {
  const dir = tempDir(t)
  const missing = join(dir, 'no-such-secret.txt')
  const issues = issuesOf(() => parseConfig({ routes: { x: route({ type: 'static', token: `\${file:${missing}}` }) } }, { baseDir: dir }))
  assert.equal(issues.length, 1)
  assert.match(issues[0] as string, /^routes\.x\.auth\.token: /)
  assert.ok(issues[0]?.includes(missing))
})

test('invalid YAML is one line naming the file, without its content', (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'bad.yaml')
  const canary = 'CANARY-yaml-secret-77aa'
  writeFileSync(file, `routes:\n  x:\n    upstream: ${UPSTREAM}\n    auth: { type: static, token: "${canary}\n  y: [\n`)
  const issues = issuesOf(() => loadConfigFile(file, {}))
  assert.equal(issues.length, 1)
  assert.ok(issues[0]?.includes(file))
  assert.ok(!issues[0]?.includes(canary))
})

test('empty routes, no routes, and a file that is not a mapping are errors', (t) => {
  assert.deepEqual(issuesOf(() => parseConfig({ routes: {} })), ['routes: at least one route is required'])
  assert.deepEqual(issuesOf(() => parseConfig({ listen: { port: 8080 } })), ['routes: is required'])
  const dir = tempDir(t)
  const empty = join(dir, 'empty.yaml')
  writeFileSync(empty, '')
  assert.equal(issuesOf(() => loadConfigFile(empty, {})).length, 1)
  assert.equal(issuesOf(() => loadConfigFile(join(dir, 'absent.yaml'), {})).length, 1)
})

test('several mistakes are reported together, one line each', () => {
  const issues = issuesOf(() => parseConfig({
    listen: { port: 99999 },
    routes: { a: route({ type: 'client_credentials', tokenUrl: 'nope', clientId: 'a', clientSecret: 'b' }), b: route({ type: 'static' }) }
  }))
  assert.deepEqual(issues.map((i) => i.split(': ', 1)[0]).sort(), ['listen.port', 'routes.a.auth.tokenUrl', 'routes.b.auth.token'])
})

test('CLI check with a bad config: exit 2, the issue lines on stderr, nothing else', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'bad.yaml')
  const canary = 'CANARY-cli-secret-2b7f'
  writeFileSync(file, [
    'routes:',
    '  x:',
    `    upstream: ${UPSTREAM}`,
    '    auth:',
    '      type: client_credentials',
    '      tokenUrl: not-a-url',
    '      clientId: a',
    '      clientSecret: ${env:CLIENT_SECRET}',
    '      scpoe: read',
    ''
  ].join('\n'))
  const env = { CLIENT_SECRET: canary }
  const expected = issuesOf(() => loadConfigFile(file, env))
  assert.equal(expected.length, 2)

  const result = await runCli(['check', '-c', file], { env })
  assert.equal(result.code, 2)
  assert.equal(result.stdout, '')
  assert.equal(result.stderr, `${expected.join('\n')}\n`)
  assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack frames')
  assert.ok(!result.stderr.includes(canary))
})

test('CLI: a missing env reference fails the same way, naming the variable', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'bad.yaml')
  writeFileSync(file, `routes:\n  x:\n    upstream: ${UPSTREAM}\n    auth: { type: static, token: "\${env:NOT_SET_ANYWHERE}" }\n`)
  const result = await runCli(['token', 'x', '-c', file])
  assert.equal(result.code, 2)
  assert.equal(result.stdout, '')
  assert.equal(result.stderr, 'routes.x.auth.token: environment variable NOT_SET_ANYWHERE is not set\n')
})

test('CLI: an unknown flag is exit 2 with the usage', async () => {
  const result = await runCli(['check', '--no-such-flag'])
  assert.equal(result.code, 2)
  assert.equal(result.stdout, '')
  assert.match(result.stderr, /no-such-flag/)
  assert.match(result.stderr, /Usage:/)
  assert.doesNotMatch(result.stderr, /^\s+at /m)
})

test('CLI: an unknown command is exit 2 with the usage', async () => {
  const result = await runCli(['frobnicate'])
  assert.equal(result.code, 2)
  assert.equal(result.stdout, '')
  assert.match(result.stderr, /frobnicate/)
  assert.match(result.stderr, /Usage:/)
})

test('an upstream with user:password is refused: it would show in logs and /routes', () => {
  const issues = issuesOf(() => parseConfig({ routes: { x: { upstream: 'https://user:PASSWORD-CANARY@api.example.com/v1', auth: staticAuth } } }))
  assert.deepEqual(issues, ['routes.x.upstream: must not carry user:password (put credentials in auth)'])
})
