import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { recordingUpstream, sendJson, tokenServer, type TokenCall } from './helpers.js'
import { tempDir } from './cli-helpers.js'
import { call, gate, tokenOf, waitFor } from './token-lifecycle-helpers.js'
import { freePort, spawnServe, writeConfig, type ServeProcess } from './operability-helpers.js'

const SECRET = 'reload-client-secret'

function clientOf (c: TokenCall): string {
  return Buffer.from((c.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8').split(':')[0] as string
}

async function setup (t: TestContext) {
  const tokens = await tokenServer(t)
  // Upstream A holds /slow until the test releases it; both answer with their own name.
  const slowGate = gate()
  const a = await recordingUpstream(t, async (req, res) => {
    if (req.url.startsWith('/slow')) {
      await slowGate.promise
      return sendJson(res, 200, { upstream: 'a', slow: true })
    }
    sendJson(res, 200, { upstream: 'a' })
  })
  const b = await recordingUpstream(t, (_req, res) => sendJson(res, 200, { upstream: 'b' }))
  const port = await freePort()
  const file = join(tempDir(t), 'cfg.yaml')
  const route = (upstream: string, clientId: string): Record<string, unknown> => ({ upstream, auth: { type: 'client_credentials', tokenUrl: tokens.tokenUrl, clientId, clientSecret: SECRET } })
  const config = (routes: Record<string, unknown>): Record<string, unknown> => ({ listen: { host: '127.0.0.1', port }, admin: false, routes })
  return { tokens, a, b, releaseSlow: slowGate.open, file, url: `http://127.0.0.1:${port}`, route, config }
}

/** Sends SIGHUP and waits for the log line that says how it went. */
async function reload (serve: ServeProcess, event: 'reloaded' | 'reload_refused'): Promise<Record<string, unknown>> {
  const before = serve.lines.length
  serve.child.kill('SIGHUP')
  return serve.waitForLog((l) => serve.lines.indexOf(l) >= before && (l.event === 'reloaded' || l.event === 'reload_refused'), `${event} after SIGHUP`)
    .then((line) => {
      assert.equal(line.event, event, JSON.stringify(line))
      return line
    })
}

test('SIGHUP applies the rewritten config: routes added, removed and changed; unchanged ones keep their token; in-flight requests finish', async (t) => {
  const s = await setup(t)
  writeConfig(s.file, s.config({ keep: s.route(s.a.url, 'keep-client'), moved: s.route(s.a.url, 'moved-client'), gone: s.route(s.a.url, 'gone-client') }))
  const serve = await spawnServe(t, s.file)

  for (const name of ['keep', 'moved', 'gone']) assert.equal((await call(`${s.url}/${name}/before`)).status, 200, name)
  const keepToken = tokenOf(s.a.requests[0])
  assert.ok(keepToken !== undefined)
  const keepCalls = (): number => s.tokens.calls.filter((c) => clientOf(c) === 'keep-client').length
  assert.equal(keepCalls(), 1)

  const slow = call(`${s.url}/keep/slow`)
  let slowSettled = false
  slow.finally(() => { slowSettled = true }).catch(() => {})
  await waitFor(() => s.a.requests.some((r) => r.url === '/slow'), 'the slow request to reach the upstream', 5000)

  writeConfig(s.file, s.config({ keep: s.route(s.a.url, 'keep-client'), moved: s.route(s.b.url, 'moved-client'), added: s.route(s.b.url, 'added-client') }))
  await reload(serve, 'reloaded')
  assert.equal(slowSettled, false, 'the slow request is still in flight across the reload')

  const added = await call(`${s.url}/added/new`)
  assert.equal(added.status, 200)
  assert.equal(added.json.upstream, 'b')
  assert.ok(s.tokens.calls.some((c) => clientOf(c) === 'added-client'), 'the added route obtained its own token')

  const gone = await call(`${s.url}/gone/after`)
  assert.equal(gone.status, 404)
  assert.equal(gone.json.error.code, 'ROUTE_NOT_FOUND')

  const moved = await call(`${s.url}/moved/after`)
  assert.equal(moved.status, 200)
  assert.equal(moved.json.upstream, 'b')
  assert.equal(s.b.requests.filter((r) => r.url === '/after').length, 1)

  const kept = await call(`${s.url}/keep/after`)
  assert.equal(kept.status, 200)
  assert.equal(kept.json.upstream, 'a')
  assert.equal(keepCalls(), 1, 'the unchanged route asked for no new token')
  assert.equal(tokenOf(s.a.requests.at(-1)), keepToken)
  assert.equal(s.a.requests.filter((r) => r.url === '/after').length, 1, 'the moved route no longer goes to the old upstream')

  // Started before the reload, answered after it (the previous config's app finishes it).
  assert.equal(slowSettled, false)
  s.releaseSlow()
  const slowAnswer = await slow
  assert.equal(slowAnswer.status, 200)
  assert.deepEqual(slowAnswer.json, { upstream: 'a', slow: true })
  assert.equal(serve.child.exitCode, null, 'still running')
})

test('SIGHUP with an invalid config is refused, logged with the key path, and the running routes keep working', async (t) => {
  const s = await setup(t)
  writeConfig(s.file, s.config({ keep: s.route(s.a.url, 'keep-client') }))
  const serve = await spawnServe(t, s.file)
  assert.equal((await call(`${s.url}/keep/before`)).status, 200)

  const broken = s.route(s.a.url, 'keep-client')
  writeConfig(s.file, s.config({ keep: { ...broken, auth: { ...(broken.auth as object), tokenUrl: 'not a url' } }, other: s.route(s.b.url, 'other-client') }))
  const refused = await reload(serve, 'reload_refused')
  assert.equal(refused.level, 50)
  const issues = refused.issues as string[]
  assert.ok(Array.isArray(issues) && issues.some((i) => i.startsWith('routes.keep.auth.tokenUrl')), JSON.stringify(issues))
  assert.ok(!JSON.stringify(refused).includes(SECRET))

  // The old config is still the one served: same routes, same token.
  const kept = await call(`${s.url}/keep/after`)
  assert.equal(kept.status, 200)
  assert.equal(kept.json.upstream, 'a')
  assert.equal((await call(`${s.url}/other/x`)).status, 404)
  assert.equal(s.tokens.calls.length, 1)
  assert.equal(tokenOf(s.a.requests.at(-1)), 'token-1')

  // A refused reload does not stop the next good one.
  writeConfig(s.file, s.config({ keep: s.route(s.a.url, 'keep-client'), other: s.route(s.b.url, 'other-client') }))
  await reload(serve, 'reloaded')
  const other = await call(`${s.url}/other/x`)
  assert.equal(other.status, 200)
  assert.equal(other.json.upstream, 'b')
  assert.equal(serve.child.exitCode, null, 'still running')
})

test('a broker a reload replaced renews no more, though a request it served is still in flight; the kept one renews on', async (t) => {
  // Short tokens: the timer renews a route in use 4 s after its token came (refreshAhead 0.8 of 5 s).
  const tokens = await tokenServer(t, (_call, n, res) => sendJson(res, 200, { access_token: `short-${n}`, expires_in: 5 }))
  const hang = gate()
  t.after(hang.open)
  const upstream = await recordingUpstream(t, async (req, res) => {
    if (req.url.startsWith('/hang')) await hang.promise
    sendJson(res, 200, { url: req.url })
  })
  const port = await freePort()
  const file = join(tempDir(t), 'cfg.yaml')
  // client_secret_post: the token server reads the client_id of every token request from its form.
  const route = (clientId: string): Record<string, unknown> => ({ upstream: upstream.url, auth: { type: 'client_credentials', tokenUrl: tokens.tokenUrl, clientId, clientSecret: SECRET, clientAuth: 'client_secret_post' } })
  const config = (b: string): Record<string, unknown> => ({ listen: { host: '127.0.0.1', port }, admin: false, tokens: { minValidity: 0.5 }, routes: { a: route('a-client'), b: route(b) } })
  const url = `http://127.0.0.1:${port}`
  const callsOf = (clientId: string): number => tokens.calls.filter((c) => c.form.get('client_id') === clientId).length
  writeConfig(file, config('b-old'))
  const serve = await spawnServe(t, file)

  assert.equal((await call(`${url}/a/x`)).status, 200)
  assert.equal((await call(`${url}/b/x`)).status, 200)
  const tokenAt = Date.now()
  const oldToken = tokenOf(upstream.requests.at(-1))
  const hanging = call(`${url}/b/hang`)
  let settled = false
  hanging.finally(() => { settled = true }).catch(() => {})
  await waitFor(() => upstream.requests.some((r) => r.url === '/hang'), 'the hanging request to reach the upstream', 5000)
  assert.equal(tokenOf(upstream.requests.at(-1)), oldToken)
  assert.deepEqual([callsOf('a-client'), callsOf('b-old')], [1, 1])

  writeConfig(file, config('b-new'))
  await reload(serve, 'reloaded')
  // Past the old broker's renewal point, with the request it served in flight all along.
  const deadline = tokenAt + 5500
  while (Date.now() < deadline && callsOf('b-old') === 1) await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal(callsOf('b-old'), 1, 'the replaced broker made a token request after the reload')
  assert.equal(settled, false, 'the request the replaced broker served is still in flight')
  assert.ok(callsOf('a-client') >= 2, 'the broker the reload kept is renewed on its timer')

  hang.open()
  const answer = await hanging
  assert.equal(answer.status, 200)
  assert.equal(callsOf('b-old'), 1)
  assert.equal((await call(`${url}/b/after`)).status, 200)
  assert.equal(callsOf('b-new'), 1, 'the route\'s new broker obtains its own token')
  assert.equal(serve.child.exitCode, null, 'still running')
})
