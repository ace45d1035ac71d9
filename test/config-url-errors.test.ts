import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { runCli, tempDir } from './cli-helpers.js'
import { recordingUpstream } from './helpers.js'
import { freePort, spawnServe, writeConfig } from './operability-helpers.js'
import { parseIssues } from './config-helpers.js'

const staticAuth = { type: 'static', token: 'static-token-value' }
const NOT_URLS = ['not a url', 'api.example.com', 'api.example.com/v1', '//api.example.com', 'localhost:8080', 'ftp://127.0.0.1/']

function netosecret (url: string): string {
  return Buffer.from(JSON.stringify({ url, shortname: 's', appname: 'a', appkey: 'k', sharedsecret: 'shh' })).toString('base64')
}

test('an upstream that is not an absolute http(s) URL names routes.NAME.upstream; no scheme is guessed', () => {
  for (const upstream of NOT_URLS) {
    assert.deepEqual(parseIssues({ routes: { x: { upstream, auth: staticAuth } } }), ['routes.x.upstream: must be an absolute http(s) URL'], upstream)
  }
})

test('every URL of a login route is checked with its key path', () => {
  const login = { type: 'login', tokenUrl: 'api.example.com/login', refresh: { url: 'not a url' } }
  assert.deepEqual(parseIssues({ routes: { x: { upstream: 'http://127.0.0.1:9', auth: login } } }).sort(), [
    'routes.x.auth.refresh.url: must be an absolute http(s) URL',
    'routes.x.auth.tokenUrl: must be an absolute http(s) URL'
  ])
})

test('the url inside a NETOSECRET is held to the upstream rules, named by routes.NAME.auth.netosecret', () => {
  assert.deepEqual(parseIssues({ routes: { x: { auth: { type: 'netography', netosecret: netosecret('api.netography.com/api/v1') } } } }),
    ['routes.x.auth.netosecret: "url" must be an http(s) URL'])
  assert.deepEqual(parseIssues({ routes: { x: { auth: { type: 'netography', netosecret: netosecret('https://api.netography.com/api/v1?k=1') } } } }),
    ['routes.x.auth.netosecret: "url" must not carry a query or fragment'])
  const issues = parseIssues({ routes: { x: { upstream: 'http://127.0.0.1:9', auth: { type: 'netography', netosecret: netosecret('https://user:CANARY-pw@api.netography.com') } } } })
  assert.deepEqual(issues, ['routes.x.auth.netosecret: "url" must not carry user:password (put credentials in auth)'])
})

test('CLI check and serve with an upstream that is not a URL: exit 2, one line naming the key path', async (t) => {
  const dir = tempDir(t)
  for (const upstream of ['not a url', 'api.example.com']) {
    const file = join(dir, 'cfg.yaml')
    writeConfig(file, { routes: { x: { upstream, auth: staticAuth } } })
    for (const command of ['check', 'serve']) {
      const result = await runCli([command, '-c', file])
      assert.equal(result.code, 2, `${command} ${upstream}: ${result.stderr}`)
      assert.equal(result.stdout, '')
      assert.equal(result.stderr, 'routes.x.upstream: must be an absolute http(s) URL\n', `${command} ${upstream}`)
    }
  }
})

test('SIGHUP with an upstream that is not a URL is refused with the key path', async (t) => {
  const upstream = await recordingUpstream(t)
  const port = await freePort()
  const file = join(tempDir(t), 'cfg.yaml')
  const config = (url: string): Record<string, unknown> => ({ listen: { host: '127.0.0.1', port }, admin: false, routes: { x: { upstream: url, auth: staticAuth } } })
  writeConfig(file, config(upstream.url))
  const serve = await spawnServe(t, file)

  writeConfig(file, config('api.example.com'))
  serve.child.kill('SIGHUP')
  const refused = await serve.waitForLog((l) => l.event === 'reload_refused' || l.event === 'reloaded', 'the reload outcome')
  assert.equal(refused.event, 'reload_refused')
  assert.deepEqual(refused.issues, ['routes.x.upstream: must be an absolute http(s) URL'])
  assert.equal(serve.child.exitCode, null, 'still running')
})
