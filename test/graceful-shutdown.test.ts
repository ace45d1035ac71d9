import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { join } from 'node:path'
import { clientCredentialsRoute, listen, sendJson, tokenServer } from './helpers.js'
import { tempDir } from './cli-helpers.js'
import { parseConfig } from '../src/config/load.js'
import { rawRequest } from './proxy-http-helpers.js'
import { gate, waitFor } from './token-lifecycle-helpers.js'
import { freePort, spawnServe, startTestServer, writeConfig } from './operability-helpers.js'

/** Past the grace period, the process may take this long to close everything and exit. */
const EXIT_MARGIN_MS = 3000

/**
 * The proxy CLI in front of an upstream that holds each request until the
 * test calls `release()` (or, with `hold` false, answers at once), with
 * `shutdownGrace` from the config.
 */
async function setup (t: TestContext, shutdownGrace: number, hold = true) {
  const tokens = await tokenServer(t)
  const released = gate()
  if (!hold) released.open()
  let arrived = 0
  const upstream = await listen(t, async (_req, res) => {
    arrived++
    await released.promise
    sendJson(res, 200, { slow: true })
  })
  const port = await freePort()
  const file = join(tempDir(t), 'cfg.yaml')
  writeConfig(file, { listen: { host: '127.0.0.1', port }, admin: false, shutdownGrace, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })
  const serve = await spawnServe(t, file)
  return { serve, url: `http://127.0.0.1:${port}`, port, arrivals: () => arrived, release: released.open }
}

/** Resolves with the connection error code, or 'connected' if the port still accepts. */
function tryConnect (port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.setTimeout(2000, () => { socket.destroy(); resolve('timeout') })
    socket.once('connect', () => { socket.destroy(); resolve('connected') })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
  })
}

test('SIGTERM lets an in-flight request finish, refuses new connections, and exits 0', async (t) => {
  const grace = 3000
  const { serve, url, port, arrivals, release } = await setup(t, grace)
  const inFlight = fetch(`${url}/api/slow`, { signal: AbortSignal.timeout(10_000) })
  // Awaited below; handled now so an early failure does not surface as an unhandled rejection.
  inFlight.catch(() => {})
  await waitFor(() => arrivals() === 1, 'the request to reach the upstream', 5000)

  serve.child.kill('SIGTERM')
  const signalledAt = Date.now()
  await serve.waitForLog((l) => l.event === 'shutdown' && l.signal === 'SIGTERM', 'the shutdown log line')
  // The line is written just before the listener closes, so the first attempts may still race it; bounded.
  const attempts: string[] = []
  const deadline = Date.now() + 2000
  while (attempts.at(-1) !== 'ECONNREFUSED' && attempts.length < 40 && Date.now() < deadline) {
    attempts.push(await tryConnect(port))
    if (attempts.at(-1) !== 'ECONNREFUSED') await new Promise((resolve) => setTimeout(resolve, 20))
  }
  assert.equal(attempts.at(-1), 'ECONNREFUSED', `new connections after the signal: ${attempts.join(', ')}`)
  assert.equal(serve.child.exitCode, null, 'still running while a request is in flight')

  // The upstream answers only now, after the signal.
  release()
  const res = await inFlight
  assert.equal(res.status, 200)
  assert.deepEqual(await res.json(), { slow: true })

  const { code, signal } = await serve.exited
  assert.equal(signal, null)
  assert.equal(code, 0, serve.stderr())
  // It waited for the request, not for the whole grace period.
  assert.ok(Date.now() - signalledAt < grace, `exited ${Date.now() - signalledAt} ms after the signal`)
  assert.ok(!serve.lines.some((l) => l.event === 'shutdown_forced'))
  assert.equal(arrivals(), 1)
})

test('a request slower than shutdownGrace does not keep the process alive', async (t) => {
  const grace = 1000
  const { serve, url, arrivals } = await setup(t, grace)
  const inFlight = fetch(`${url}/api/never`, { signal: AbortSignal.timeout(10_000) }).then((res) => res.status, (err: Error) => err.name)
  await waitFor(() => arrivals() === 1, 'the request to reach the upstream', 5000)

  serve.child.kill('SIGTERM')
  const signalledAt = Date.now()
  // Bounded: a process still alive past grace + margin fails here (t.after kills it).
  let timer: NodeJS.Timeout | undefined
  const exit = await Promise.race([
    serve.exited,
    new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), grace + EXIT_MARGIN_MS) })
  ])
  clearTimeout(timer)
  const took = Date.now() - signalledAt
  assert.ok(exit !== undefined, `still running ${took} ms after SIGTERM with shutdownGrace ${grace}`)
  const { code, signal } = exit
  assert.ok(took >= grace - 100, `exited ${took} ms after the signal, before the grace period was over`)
  assert.equal(signal, null)
  assert.equal(code, 0, serve.stderr())
  assert.ok(serve.lines.some((l) => l.event === 'shutdown_forced'), 'the forced close is logged')
  // The client got no answer from an upstream that never gave one: its connection was closed.
  assert.notEqual(await inFlight, 200)
  // The cut request has its one log line, marked as cut by the shutdown, and is not blamed on the upstream.
  const lines = serve.lines.filter((l) => l.msg === 'request')
  assert.deepEqual(lines.map((l) => [l.path, l.status, l.aborted, l.cut]), [['/api/never', 503, true, 'shutdown']])
  assert.ok(!serve.lines.some((l) => l.msg === 'request failed' || JSON.stringify(l).includes('UND_ERR')), JSON.stringify(serve.lines))
})

test('requests cut past the grace are logged as cut by the shutdown, never as upstream failures', async (t) => {
  const tokens = await tokenServer(t)
  const heldToken = gate()
  const slowTokens = await tokenServer(t, async (_call, n, res) => {
    await heldToken.promise
    sendJson(res, 200, { access_token: `slow-${n}`, expires_in: 3600 })
  })
  t.after(heldToken.open)
  const arrived = new Set<string>()
  const upstream = await listen(t, (req, res) => {
    arrived.add(req.url ?? '')
    // /stream starts a big answer and stops half-way; /never does not answer at all.
    if (req.url === '/stream') res.writeHead(200, { 'content-type': 'application/octet-stream' }).write(Buffer.alloc(256 * 1024))
  })
  const server = await startTestServer(t, {
    admin: { host: '127.0.0.1', port: 0 },
    shutdownGrace: 300,
    routes: {
      api: clientCredentialsRoute(upstream.url, tokens.tokenUrl),
      slow: clientCredentialsRoute(upstream.url, slowTokens.tokenUrl)
    }
  })
  const metricsBefore = await (await fetch(`${server.adminUrl ?? ''}/metrics`)).text()
  assert.doesNotMatch(metricsBefore, /bearer_proxy_upstream_errors_total\{/)

  const never = rawRequest(server.url, { path: '/api/never' }).then((r) => r.status, (err: Error) => err.message)
  const stream = rawRequest(server.url, { path: '/api/stream' }).then((r) => r.status, (err: Error) => err.message)
  const token = rawRequest(server.url, { path: '/slow/waiting' }).then((r) => r.status, (err: Error) => err.message)
  await waitFor(() => arrived.size === 2 && slowTokens.calls.length === 1, 'both upstream requests and the token request', 5000)

  await server.stop()
  for (const outcome of await Promise.all([never, stream, token])) assert.notEqual(outcome, 200)

  const lines = server.logs.lines
  const requests = lines.filter((l) => l.msg === 'request').map((l) => [l.route, l.path, l.status, l.aborted, l.cut]).sort()
  assert.deepEqual(requests, [
    ['api', '/api/never', 503, true, 'shutdown'],
    // Its status and headers had gone out: logged with them.
    ['api', '/api/stream', 200, true, 'shutdown'],
    ['slow', '/slow/waiting', 503, true, 'shutdown']
  ])
  assert.ok(!lines.some((l) => l.msg === 'request failed' || JSON.stringify(l).includes('UND_ERR')), JSON.stringify(lines.filter((l) => l.level !== 30)))
})

test('SIGINT exits 0', async (t) => {
  const { serve, url } = await setup(t, 3000, false)
  const res = await fetch(`${url}/api/x`)
  assert.equal(res.status, 200)
  await res.arrayBuffer()
  serve.child.kill('SIGINT')
  const { code, signal } = await serve.exited
  assert.equal(signal, null)
  assert.equal(code, 0, serve.stderr())
  assert.ok(serve.lines.some((l) => l.event === 'shutdown' && l.signal === 'SIGINT'))
})

test('a request still finishing on a config a reload replaced is logged as cut by the shutdown too', async (t) => {
  const tokens = await tokenServer(t)
  let arrived = 0
  const upstream = await listen(t, () => { arrived++ })
  const input = { listen: { host: '127.0.0.1', port: 0 }, admin: false, shutdownGrace: 300, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }
  const server = await startTestServer(t, input)
  const inFlight = rawRequest(server.url, { path: '/api/before-reload' }).then((r) => r.status, (err: Error) => err.message)
  await waitFor(() => arrived === 1, 'the request to reach the upstream', 5000)

  await server.reload(parseConfig({ ...input, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl, { timeout: 40_000 }) } }, { env: {} }))
  await server.stop()
  assert.notEqual(await inFlight, 200)

  const requests = server.logs.lines.filter((l) => l.msg === 'request').map((l) => [l.path, l.status, l.aborted, l.cut])
  assert.deepEqual(requests, [['/api/before-reload', 503, true, 'shutdown']])
  assert.ok(!server.logs.lines.some((l) => l.msg === 'request failed'))
})

test('no token is renewed during the shutdown grace: the request in flight keeps the token it has', async (t) => {
  // Short tokens: the timer renews a route in use 4 s after its token came (refreshAhead 0.8 of 5 s).
  const tokens = await tokenServer(t, (_call, n, res) => sendJson(res, 200, { access_token: `short-${n}`, expires_in: 5 }))
  const released = gate()
  t.after(released.open)
  let arrived = 0
  const upstream = await listen(t, async (_req, res) => {
    arrived++
    await released.promise
    sendJson(res, 200, { slow: true })
  })
  const port = await freePort()
  const file = join(tempDir(t), 'cfg.yaml')
  writeConfig(file, { listen: { host: '127.0.0.1', port }, admin: false, shutdownGrace: 10_000, tokens: { minValidity: 0.5 }, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })
  const serve = await spawnServe(t, file)
  const inFlight = fetch(`http://127.0.0.1:${port}/api/slow`, { signal: AbortSignal.timeout(20_000) })
  inFlight.catch(() => {})
  await waitFor(() => arrived === 1, 'the request to reach the upstream', 5000)
  const tokenAt = Date.now()
  assert.equal(tokens.calls.length, 1)

  serve.child.kill('SIGTERM')
  await serve.waitForLog((l) => l.event === 'shutdown' && l.signal === 'SIGTERM', 'the shutdown log line')
  // Past the token's renewal point, the request held at the upstream all along.
  const deadline = tokenAt + 5500
  while (Date.now() < deadline && tokens.calls.length === 1) await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal(tokens.calls.length, 1, 'a token request during the shutdown grace')
  assert.equal(serve.child.exitCode, null, 'still running while a request is in flight')

  released.open()
  const res = await inFlight
  assert.equal(res.status, 200)
  await res.arrayBuffer()
  const { code } = await serve.exited
  assert.equal(code, 0, serve.stderr())
  assert.equal(tokens.calls.length, 1)
  assert.ok(!serve.lines.some((l) => l.event === 'shutdown_forced'))
})

test('a request that comes during the shutdown grace on a kept-alive connection gets the token held, past its renewal point, and renews nothing', async (t) => {
  // A 6 s token, renewed from 3 s on (refreshAhead 0.5), usable until 5.5 s.
  const tokens = await tokenServer(t, (_call, n, res) => sendJson(res, 200, { access_token: `short-${n}`, expires_in: 6 }))
  const released = gate()
  t.after(released.open)
  const arrivals: string[] = []
  const upstream = await listen(t, async (req, res) => {
    arrivals.push(req.url ?? '')
    if (req.url === '/first') await released.promise
    sendJson(res, 200, { url: req.url, authorization: req.headers.authorization })
  })
  const port = await freePort()
  const file = join(tempDir(t), 'cfg.yaml')
  writeConfig(file, { listen: { host: '127.0.0.1', port }, admin: false, shutdownGrace: 10_000, tokens: { minValidity: 0.5, refreshAhead: 0.5 }, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })
  const serve = await spawnServe(t, file)

  // One connection; Node reads the second request on it while the first is still answered, so
  // that connection is never idle and the shutdown lets it run.
  const socket = connect({ host: '127.0.0.1', port })
  t.after(() => socket.destroy())
  let received = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => { received += chunk })
  const get = (path: string): void => { socket.write(`GET /api${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`) }
  get('/first')
  await waitFor(() => arrivals.length === 1, 'the first request to reach the upstream', 5000)
  const tokenAt = Date.now()
  assert.equal(tokens.calls.length, 1)

  serve.child.kill('SIGTERM')
  await serve.waitForLog((l) => l.event === 'shutdown' && l.signal === 'SIGTERM', 'the shutdown log line')
  // Past the token's renewal point, well inside its usable time.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, tokenAt + 3500 - Date.now())))
  get('/second')
  await waitFor(() => arrivals.includes('/second'), 'the second request to reach the upstream', 2000)
  // A renewal it started would ask the token server at once.
  const deadline = Date.now() + 1000
  while (Date.now() < deadline && tokens.calls.length === 1) await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(tokens.calls.length, 1, 'a token request during the shutdown grace')

  released.open()
  await waitFor(() => (received.match(/HTTP\/1\.1 200/g) ?? []).length === 2, 'both answers', 5000)
  assert.equal((received.match(/Bearer short-1/g) ?? []).length, 2, received)
  socket.end()
  const { code } = await serve.exited
  assert.equal(code, 0, serve.stderr())
  assert.equal(tokens.calls.length, 1)
})
