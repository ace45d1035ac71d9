import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import type { RouteView } from '../src/admin/app.js'
import { runCli, tempDir } from './cli-helpers.js'
import { recordingUpstream, sendJson, tokenServer } from './helpers.js'
import { canary, freePort, spawnServe, writeConfig } from './operability-helpers.js'
import { call } from './token-lifecycle-helpers.js'

/**
 * `bearer-proxy status [-c FILE] [--json]`: the running proxy's route table,
 * read from the admin port its config names; exit 1 when a route is failing
 * or nothing answers there. It never asks for a token and prints no secret.
 */
async function setup (t: TestContext, admin: (dir: string) => Promise<Record<string, unknown>>) {
  let refuse = true
  const secret = canary('client-secret')
  const tokens = await tokenServer(t, (_call, n, res) => sendJson(res, 200, { access_token: `CANARY-token-${n}`, expires_in: 3600 }))
  const refusing = await tokenServer(t, (_call, n, res) => refuse
    ? sendJson(res, 401, { error: 'invalid_client', error_description: 'client disabled\u001b[31m' })
    : sendJson(res, 200, { access_token: `CANARY-other-${n}`, expires_in: 3600 }))
  const upstream = await recordingUpstream(t)
  const dir = tempDir(t)
  const file = join(dir, 'cfg.json')
  const auth = (tokenUrl: string): Record<string, unknown> => ({ type: 'client_credentials', tokenUrl, clientId: 'status-cli', clientSecret: secret })
  const adminAddress = await admin(dir)
  writeConfig(file, {
    listen: { host: '127.0.0.1', port: await freePort() },
    admin: adminAddress,
    routes: {
      billing: { upstream: upstream.url, auth: auth(tokens.tokenUrl) },
      partner: { upstream: upstream.url, auth: auth(refusing.tokenUrl) },
      legacy: { upstream: upstream.url, auth: { type: 'static', token: secret } }
    }
  })
  return { file, dir, secret, tokens, refusing, fix: () => { refuse = false } }
}

function assertNoSecret (text: string, secret: string): void {
  assert.ok(!text.includes(secret), 'the secret was printed')
  assert.doesNotMatch(text, /CANARY-(token|other)/, 'a token was printed')
  assert.ok(!text.includes('\u001b'), 'no terminal escape from an error message')
}

test('status prints the running proxy\'s route table (or JSON), exit 1 while a route fails, 0 once none does', async (t) => {
  const adminPort = await freePort()
  const s = await setup(t, async () => ({ host: '127.0.0.1', port: adminPort }))
  const serve = await spawnServe(t, s.file)
  const listening = serve.lines.find((l) => l.event === 'listening' && l.listener === 'proxy')
  const proxyUrl = listening?.url as string
  for (const path of ['/billing/a', '/billing/b', '/partner/a']) await call(`${proxyUrl}${path}`)
  // The hour-long token is shown to the second, rounded: read within half a second of its
  // issue (the CLI starts that fast) it would still show 1h 00m 00s.
  await new Promise((resolve) => setTimeout(resolve, 1000))

  const table = await runCli(['status', '-c', s.file])
  assert.equal(table.code, 1, `a failing route: exit 1\n${table.stdout}${table.stderr}`)
  assert.equal(table.stderr, '')
  const lines = table.stdout.trimEnd().split('\n')
  assert.equal(lines.length, 4, table.stdout)
  assert.match(lines[0] as string, /^ROUTE\s+PREFIX\s+UPSTREAM\s+AUTH\s+STATE\s+EXPIRES IN\s+LAST REFRESH\s+TOKEN REQUESTS\s+REQUESTS \(5 MIN\)\s+LAST ERROR$/)
  assert.match(lines[1] as string, /^billing\s+\/billing\s+http:\/\/127\.0\.0\.1:\d+\s+client_credentials\s+valid\s+59m \d\ds\s+\d\d:\d\d:\d\d\s+1\s+2\s+-$/)
  assert.match(lines[2] as string, /^partner\s+\/partner\s+\S+\s+client_credentials\s+failing\s+-\s+-\s+1 \(1 failed\)\s+1 \(1 error\)\s+\d\d:\d\d:\d\d invalid_client: client disabled \[31m \(HTTP 401\)$/)
  assert.match(lines[3] as string, /^legacy\s+\/legacy\s+\S+\s+static\s+valid\s+never\s+-\s+0\s+0\s+-$/)
  // Columns line up: every row's STATE starts where the header's does.
  const stateColumn = (lines[0] as string).indexOf('STATE')
  for (const line of lines.slice(1)) assert.match(line.slice(stateColumn), /^(valid|failing) /)
  assertNoSecret(table.stdout, s.secret)

  const json = await runCli(['status', '-c', s.file, '--json'])
  assert.equal(json.code, 1)
  const routes = (JSON.parse(json.stdout) as { routes: RouteView[] }).routes
  assert.deepEqual(routes.map((r) => [r.name, r.state]), [['billing', 'valid'], ['partner', 'failing'], ['legacy', 'valid']])
  assert.deepEqual(routes[0]?.requests.recent, { total: 2, errors: 0, seconds: 300 })
  assert.match(routes[1]?.lastError ?? '', /client disabled/)
  assertNoSecret(json.stdout.replaceAll('\\u001b', ''), s.secret)
  assert.equal(s.tokens.calls.length, 1, 'status asks for no token')

  // Fixed, and renewed on the admin port: no failing route, exit 0.
  s.fix()
  const adminUrl = `http://127.0.0.1:${adminPort}`
  assert.equal((await call(`${adminUrl}/routes/partner/renew`, { method: 'POST' })).status, 200)
  const fixed = await runCli(['status', '-c', s.file])
  assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr)
  assert.match(fixed.stdout, /\npartner\s+\/partner\s+\S+\s+client_credentials\s+valid\s/)
})

test('status over the admin\'s Unix socket', async (t) => {
  const s = await setup(t, async (dir) => ({ path: join(dir, 'admin.sock') }))
  await spawnServe(t, s.file)
  const json = await runCli(['status', '-c', s.file, '--json'])
  assert.equal(json.code, 0, json.stdout + json.stderr)
  const routes = (JSON.parse(json.stdout) as { routes: RouteView[] }).routes
  assert.deepEqual(routes.map((r) => [r.name, r.state]), [['billing', 'none'], ['partner', 'none'], ['legacy', 'valid']])
})

test('status: exit 1 with a clear message when nothing answers on the admin port; exit 2 when the config has none', async (t) => {
  const port = await freePort()
  const s = await setup(t, async () => ({ host: '127.0.0.1', port }))
  const result = await runCli(['status', '-c', s.file])
  assert.equal(result.code, 1)
  assert.equal(result.stdout, '')
  assert.equal(result.stderr, `bearer-proxy: the admin port 127.0.0.1:${port} does not answer (ECONNREFUSED); is \`bearer-proxy serve\` running with this config?\n`)

  // --admin-port points it elsewhere, as it does for serve.
  const other = await freePort()
  const flagged = await runCli(['status', '-c', s.file, '--admin-port', String(other)])
  assert.equal(flagged.code, 1)
  assert.match(flagged.stderr, new RegExp(`admin port 127\\.0\\.0\\.1:${other} does not answer`))

  const off = join(s.dir, 'off.json')
  writeConfig(off, { admin: false, routes: { x: { upstream: 'http://127.0.0.1:9', auth: { type: 'static', token: 'abcd' } } } })
  const disabled = await runCli(['status', '-c', off])
  assert.equal(disabled.code, 2)
  assert.equal(disabled.stderr, 'bearer-proxy: status reads the running proxy\'s admin port, but the config turns it off (admin: false)\n')
})
