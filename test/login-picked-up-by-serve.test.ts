import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { tempDir } from './cli-helpers.js'
import { startLoginProvider } from './fixtures/oidc-login-provider.js'
import { recordingUpstream } from './helpers.js'
import { Browser, carriesNone, runCliLive } from './login-helpers.js'
import { spawnServe, writeConfig } from './operability-helpers.js'

test('a running serve answers LOGIN_REQUIRED with no token request, then takes a login made meanwhile without a restart', async (t) => {
  const op = await startLoginProvider()
  t.after(() => op.close())
  const upstream = await recordingUpstream(t)
  const dir = tempDir(t)
  const file = join(dir, 'config.json')
  const { clientId, clientSecret } = op.clients.confidential
  writeConfig(file, {
    listen: { port: 0 },
    admin: { port: 0 },
    stateDir: join(dir, 'state'),
    // The endpoints come from the issuer's metadata (RFC 8414).
    routes: { api: { upstream: upstream.url, auth: { type: 'authorization_code', issuer: op.issuer, clientId, clientSecret, scope: 'openid api:read' } } }
  })
  const serve = await spawnServe(t, file)
  const proxyUrl = String(serve.lines.find((l) => l.event === 'listening' && l.listener === 'proxy')?.url)
  const adminUrl = String((await serve.waitForLog((l) => l.event === 'listening' && l.listener === 'admin', 'the admin port')).url)

  for (let i = 0; i < 20; i++) {
    const res = await fetch(`${proxyUrl}/api/things`)
    assert.equal(res.status, 401)
    const body = await res.json() as { error: { code: string, message: string, route: string } }
    assert.equal(body.error.code, 'LOGIN_REQUIRED')
    assert.equal(body.error.route, 'api')
    assert.match(body.error.message, /bearer-proxy login api/)
  }
  assert.equal(op.tokenRequests.length, 0, 'no token request without a login')
  assert.equal(upstream.requests.length, 0)
  const routes = await (await fetch(`${adminUrl}/routes`)).json() as { routes: Array<{ state: string }> }
  assert.equal(routes.routes[0]?.state, 'login_required')
  const ready = await fetch(`${adminUrl}/readyz`)
  assert.equal(ready.status, 503, 'a login route without a login is not ready by default')

  const login = runCliLive(t, ['login', 'api', '-c', file, '--no-browser'])
  const [, url] = await login.waitFor(/^ {2}(http\S+)$/m)
  assert.ok(url?.startsWith(`${op.issuer}/auth?`), url)
  const callback = await new Browser().walk(url ?? '')
  assert.equal(callback.status, 200)
  const result = await login.done
  assert.equal(result.code, 0, result.stderr)
  assert.match(result.stderr, /Logged in: route "api"/)
  assert.equal(result.stdout, '', 'the login prints nothing on stdout')

  // The running serve looks in the store again within about a second.
  let status = 0
  for (let i = 0; i < 50 && status !== 200; i++) {
    status = (await fetch(`${proxyUrl}/api/things`)).status
    if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  assert.equal(status, 200, 'the login is taken without a restart')
  const accessToken = upstream.requests.at(-1)?.headers.authorization?.replace(/^Bearer /, '')
  assert.ok(accessToken !== undefined && accessToken.length > 20)
  assert.equal((await fetch(`${adminUrl}/readyz`)).status, 200)
  const exchange = op.tokenRequests.find((r) => r.form.get('grant_type') === 'authorization_code')
  assert.equal(exchange?.status, 200)
  assert.equal(exchange?.form.get('scope'), null, 'scope goes on the authorization request, not the code exchange')
  assert.equal(op.authorizationRequests[0]?.get('scope'), 'openid api:read')

  // Nothing secret in any output: the code, the verifier, the tokens, the client secret.
  const secrets = [exchange?.form.get('code') ?? undefined, exchange?.form.get('code_verifier') ?? undefined, accessToken, clientSecret]
  const outputs = [result.stdout, result.stderr, serve.stderr(), JSON.stringify(serve.lines), JSON.stringify(routes)]
  for (const output of outputs) assert.ok(carriesNone(output, secrets), output)
  assert.deepEqual(op.serverErrors(), [])
})
