import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import { listen, startProxy } from './helpers.js'
import { socketExchange, startProductionServer } from './security-helpers.js'

const staticAuth = { type: 'static', token: 'route-key-1234' } as const
const MiB = 1024 * 1024

async function until (what: string, ms: number, done: () => boolean): Promise<number> {
  const started = Date.now()
  while (!done()) {
    if (Date.now() - started > ms) assert.fail(`${what}: not within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return Date.now() - started
}

test('a client that stops reading a large answer is cut off after the route timeout, and so is the upstream request', async (t) => {
  let upstreamClosed = false
  let finished = false
  const upstream = await listen(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(50 * MiB) })
    const chunk = Buffer.alloc(64 * 1024, 97)
    let written = 0
    const pump = (): void => {
      while (written < 50 * MiB) {
        written += chunk.length
        if (!res.write(chunk)) { res.once('drain', pump); return }
      }
      res.end()
    }
    pump()
    res.on('finish', () => { finished = true })
    res.on('close', () => { upstreamClosed = true })
  })
  const proxy = await startProductionServer(t, { routes: { api: { upstream: upstream.url, timeout: 500, auth: staticAuth } } })
  const socket = connect(proxy.port, '127.0.0.1')
  socket.on('error', () => {})
  t.after(() => socket.destroy())
  socket.write('GET /api/big HTTP/1.1\r\nHost: localhost\r\n\r\n')
  socket.pause() // never reads
  const ms = await until('the upstream request ends', 5000, () => upstreamClosed)
  assert.equal(finished, false, 'the upstream never got to send all of it')
  assert.ok(ms >= 400, `cut after ${ms} ms, before the route timeout`)
})

test('an upload that stalls after the upstream answered early: the streamed answer still arrives whole, nothing crashes', async (t) => {
  const upstream = await listen(t, (_req, res) => {
    // Answers at once without reading the body, then streams for a second.
    res.writeHead(200, { 'content-type': 'text/plain' })
    let n = 0
    const timer = setInterval(() => { res.write(`chunk ${n++}\n`); if (n === 10) { clearInterval(timer); res.end('end\n') } }, 100)
    res.on('close', () => clearInterval(timer))
  })
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, timeout: 300, auth: staticAuth } } })
  const answer = await socketExchange(proxy.url, 'POST /api/upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n0123456789', 3000)
  assert.equal(answer.status, 200)
  assert.match(answer.raw, /chunk 9\r?\n[\s\S]*end/)
  const after = await socketExchange(proxy.url, 'GET /api/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  assert.equal(after.status, 200, 'the proxy is still up')
})

test('a stalled upload answered 408 also ends the upstream request, and the proxy shuts down promptly', async (t) => {
  let upstreamClosed = false
  const upstream = await listen(t, (req, res) => {
    req.resume() // reads whatever comes, waits for the end that never comes
    res.on('close', () => { upstreamClosed = true })
  })
  for (const length of [1000, 5 * MiB]) {
    upstreamClosed = false
    const proxy = await startProductionServer(t, { shutdownGrace: 500, routes: { api: { upstream: upstream.url, timeout: 400, auth: staticAuth } } })
    const answer = await socketExchange(proxy.url, `POST /api/upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: ${length}\r\n\r\n0123456789`, 4000)
    assert.equal(answer.status, 408, `${length}: ${answer.raw.slice(0, 120)}`)
    await until(`${length}: the upstream request ends`, 2000, () => upstreamClosed)
    const started = Date.now()
    await proxy.close()
    assert.ok(Date.now() - started < 3000, `${length}: shutdown took ${Date.now() - started} ms`)
  }
})

test('a 304 or 204 with a Content-Length is passed on without a body', async (t) => {
  const upstream = await listen(t, (req, res) => {
    if (req.url === '/304') res.writeHead(304, { etag: '"v1"', 'content-length': '1234' }).end()
    else res.writeHead(204, { 'x-done': 'yes' }).end()
  })
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, auth: staticAuth } } })
  const notModified = await socketExchange(proxy.url, 'GET /api/304 HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: "v1"\r\nConnection: close\r\n\r\n')
  assert.equal(notModified.status, 304, notModified.raw.slice(0, 200))
  assert.equal(notModified.headers.etag, '"v1"')
  const noContent = await socketExchange(proxy.url, 'GET /api/204 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  assert.equal(noContent.status, 204)
  assert.equal(noContent.headers['x-done'], 'yes')
})

test('a HEAD answer passes on its headers (Content-Length included) with no body, and the connection carries the next request', async (t) => {
  const upstream = await listen(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1234', etag: '"h1"' })
    res.end(req.method === 'HEAD' ? undefined : 'x'.repeat(1234))
  })
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, auth: staticAuth } } })
  const both = await socketExchange(proxy.url, 'HEAD /api/doc HTTP/1.1\r\nHost: localhost\r\n\r\nGET /api/doc HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  assert.equal(both.status, 200, both.raw.slice(0, 200))
  assert.equal(both.headers['content-length'], '1234')
  assert.equal(both.headers.etag, '"h1"')
  // The HEAD answer ends at its blank line: what follows is the GET's answer, whole.
  const second = both.raw.slice(both.raw.indexOf('\r\n\r\n') + 4)
  assert.ok(second.startsWith('HTTP/1.1 200 OK\r\n'), `after the HEAD answer: ${second.slice(0, 80)}`)
  assert.ok(second.endsWith(`\r\n\r\n${'x'.repeat(1234)}`), 'the GET answer carries its whole body')
  const logged = proxy.logs.lines.filter((line) => line.msg === 'request').map(({ method, status, aborted }) => ({ method, status, aborted }))
  assert.deepEqual(logged, [{ method: 'HEAD', status: 200, aborted: undefined }, { method: 'GET', status: 200, aborted: undefined }])
})
