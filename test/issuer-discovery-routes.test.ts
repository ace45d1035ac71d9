import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { runCli, tempDir } from './cli-helpers.js'
import { listen, readBody, recordingUpstream, sendJson, startProxy } from './helpers.js'
import { writeConfig } from './operability-helpers.js'

test('a client_credentials route with issuer reads its token endpoint from the metadata, once', async (t) => {
  const metadataReads: string[] = []
  const grants: string[] = []
  const as = await listen(t, async (req, res) => {
    if (req.method === 'GET' && req.url?.startsWith('/.well-known/')) {
      metadataReads.push(req.url)
      if (req.url !== '/.well-known/oauth-authorization-server/tenant') return sendJson(res, 404, {})
      return sendJson(res, 200, { issuer: `${as.url}/tenant`, token_endpoint: `${as.url}/tenant/oauth2/token` })
    }
    if (req.method === 'POST' && req.url === '/tenant/oauth2/token') {
      grants.push((await readBody(req)).toString())
      return sendJson(res, 200, { access_token: `discovered-${grants.length}`, expires_in: 3600 })
    }
    sendJson(res, 404, {})
  })
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, auth: { type: 'client_credentials', issuer: `${as.url}/tenant`, clientId: 'c', clientSecret: 'client-secret-0123456789' } } } })
  for (let i = 0; i < 3; i++) assert.equal((await fetch(`${proxy.url}/api/x`)).status, 200)
  assert.equal(upstream.requests.at(-1)?.headers.authorization, 'Bearer discovered-1')
  assert.deepEqual(metadataReads, ['/.well-known/oauth-authorization-server/tenant'])
  assert.equal(grants.length, 1)
  assert.match(grants[0] ?? '', /grant_type=client_credentials/)
})

test('discovery failing: serve answers 503 TOKEN_UNAVAILABLE naming the route\'s issuer, and tries again; token exits 1 naming it', async (t) => {
  let up = false
  const as = await listen(t, async (req, res) => {
    if (!up) return sendJson(res, 503, {})
    if (req.method === 'GET' && req.url === '/.well-known/oauth-authorization-server') return sendJson(res, 200, { issuer: as.url, token_endpoint: `${as.url}/token` })
    if (req.method === 'POST' && req.url === '/token') return sendJson(res, 200, { access_token: 'after-outage', expires_in: 3600 })
    sendJson(res, 404, {})
  })
  const upstream = await recordingUpstream(t)
  let now = Date.now()
  const route = { upstream: upstream.url, auth: { type: 'client_credentials', issuer: as.url, clientId: 'c', clientSecret: 'client-secret-0123456789' } }
  const proxy = await startProxy(t, { routes: { api: route } }, { now: () => now })
  const res = await fetch(`${proxy.url}/api/x`)
  assert.equal(res.status, 503)
  assert.ok(res.headers.get('retry-after') !== null)
  const body = await res.json() as { error: { code: string, message: string } }
  assert.equal(body.error.code, 'TOKEN_UNAVAILABLE')
  assert.match(body.error.message, /routes\.api\.auth\.issuer: issuer http:\/\/127\.0\.0\.1:\d+: no authorization server metadata/)

  up = true
  now += 120_000
  assert.equal((await fetch(`${proxy.url}/api/x`)).status, 200, 'discovery is tried again once the backoff allows')
  assert.equal(upstream.requests.at(-1)?.headers.authorization, 'Bearer after-outage')

  up = false
  const dir = tempDir(t)
  const file = join(dir, 'config.json')
  writeConfig(file, { routes: { api: route } })
  const token = await runCli(['token', 'api', '-c', file])
  assert.equal(token.code, 1)
  assert.equal(token.stdout, '')
  assert.match(token.stderr, /routes\.api\.auth\.issuer: issuer .*no authorization server metadata/)
  assert.doesNotMatch(token.stderr, /client-secret/)
})
