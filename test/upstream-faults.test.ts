import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { request, type IncomingMessage, type ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { test } from 'node:test'
import { listen, recordingUpstream, startProxy } from './helpers.js'
import { rawRequest } from './proxy-http-helpers.js'
import { rssWatcher } from './security-helpers.js'

const MiB = 1024 * 1024
const BIG = 50 * MiB
const CHUNK = 64 * 1024
/** The proxy runs in this process, so this bounds the proxy, the test's servers and clients together. */
const MAX_RSS_GROWTH = 100 * MiB
const WAIT_MS = 10_000
const staticAuth = { type: 'static', token: 'route-key-1234' } as const

/**
 * `total` bytes made on demand (never held at once): a random block, each
 * copy stamped with its index so that lost, repeated or reordered chunks
 * change the hash. `produced` counts what has been pulled so far.
 */
function generated (total: number): { stream: Readable, produced: () => number, sha256: () => string } {
  const block = randomBytes(CHUNK)
  const hash = createHash('sha256')
  let produced = 0
  let index = 0
  const stream = new Readable({
    read () {
      if (produced >= total) {
        this.push(null)
        return
      }
      const chunk = Buffer.from(block.subarray(0, Math.min(CHUNK, total - produced)))
      chunk.writeUInt32BE(index++, 0)
      produced += chunk.length
      hash.update(chunk)
      this.push(chunk)
    }
  })
  return { stream, produced: () => produced, sha256: () => hash.digest('hex') }
}

/** GET through the proxy; `onFirstByte` may hold the reading (the client stops reading, TCP backpressure). */
async function download (url: string, onFirstByte?: (res: IncomingMessage) => Promise<void>): Promise<{ status: number, bytes: number, sha256: string }> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { req.destroy(); reject(new Error(`download did not finish within ${WAIT_MS} ms`)) }, WAIT_MS * 2)
    const req = request(url, { agent: false }, (res) => {
      const hash = createHash('sha256')
      let bytes = 0
      let holding: Promise<void> | undefined
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length
        hash.update(chunk)
        if (holding === undefined && onFirstByte !== undefined) {
          res.pause()
          holding = onFirstByte(res).then(() => { res.resume() }, (err: unknown) => { req.destroy(err as Error) })
        }
      })
      res.once('end', () => { clearTimeout(timer); resolve({ status: res.statusCode ?? 0, bytes, sha256: hash.digest('hex') }) })
      res.once('error', (err) => { clearTimeout(timer); reject(err) })
    })
    req.once('error', (err) => { clearTimeout(timer); reject(err) })
    req.end()
  })
}

/** How a response ended for the client: completely, or aborted with how many body bytes. */
async function fetchOutcome (url: string): Promise<{ status: number, bytes: number, complete: boolean, error: string | undefined, elapsedMs: number }> {
  const started = Date.now()
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { req.destroy(); reject(new Error(`the client was left hanging for ${WAIT_MS} ms`)) }, WAIT_MS)
    const req = request(url, { agent: false }, (res) => {
      let bytes = 0
      let settled = false
      const settle = (error: string | undefined): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resolve({ status: res.statusCode ?? 0, bytes, complete: res.complete, error, elapsedMs: Date.now() - started })
      }
      res.on('data', (chunk: Buffer) => { bytes += chunk.length })
      res.once('end', () => settle(undefined))
      res.once('error', (err) => settle(err.message))
      res.once('close', () => settle(res.complete ? undefined : 'closed'))
    })
    req.once('error', (err) => { clearTimeout(timer); reject(err) })
    req.end()
  })
}

test('an upstream that resets mid-response: the client sees the response aborted, not a hang, and the proxy keeps serving', async (t) => {
  const head = randomBytes(256 * 1024)
  const upstream = await listen(t, (req, res: ServerResponse) => {
    const chunked = req.url?.includes('chunked') === true
    res.writeHead(200, { 'content-type': 'application/octet-stream', ...(chunked ? {} : { 'content-length': String(4 * MiB) }) })
    res.write(head)
    // Headers and part of the body are out; then the connection is reset.
    setTimeout(() => res.socket?.resetAndDestroy(), 50)
  })
  const good = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { bad: { upstream: upstream.url, auth: staticAuth }, good: { upstream: good.url, auth: staticAuth } } })

  for (const path of ['/bad/with-length', '/bad/chunked']) {
    const outcome = await fetchOutcome(`${proxy.url}${path}`)
    assert.equal(outcome.status, 200, path)
    assert.equal(outcome.complete, false, `${path}: the truncated body must not look complete (${outcome.bytes} bytes)`)
    assert.ok(outcome.error !== undefined, `${path}: the client is told the response was aborted`)
    assert.ok(outcome.bytes <= head.length, path)

    const after = await rawRequest(proxy.url, { path: '/good/after' })
    assert.equal(after.status, 200, `${path}: the proxy still serves`)
  }
  assert.equal(good.requests.length, 2)
})

test('a small answer (read whole before it is sent) that the upstream breaks off is broken off for the client too', async (t) => {
  const upstream = await listen(t, (_req, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(32 * 1024) })
    res.write('{"partial":')
    setTimeout(() => res.socket?.resetAndDestroy(), 50)
  })
  const good = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { bad: { upstream: upstream.url, auth: staticAuth }, good: { upstream: good.url, auth: staticAuth } } })

  // A socket closed before any answer rejects the request: that is a broken-off answer too; a hang is not.
  const outcome = await fetchOutcome(`${proxy.url}/bad/small`).catch((err: Error) => {
    if (err.message.includes('left hanging')) throw err
    return { status: 0, complete: false, bytes: 0, error: err.message }
  })
  assert.equal(outcome.complete, false, 'a truncated answer never looks complete')
  assert.ok(outcome.error !== undefined, 'the client is told the answer was broken off')
  const after = await rawRequest(proxy.url, { path: '/good/after' })
  assert.equal(after.status, 200, 'the proxy still serves')
})

test('a client that stops reading a 50 MiB download does not make the proxy buffer it', async (t) => {
  let source: ReturnType<typeof generated> | undefined
  const upstream = await listen(t, async (_req, res) => {
    source = generated(BIG)
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG) })
    await pipeline(source.stream, res).catch(() => {})
  })
  const proxy = await startProxy(t, { routes: { down: { upstream: upstream.url, auth: staticAuth } } })

  let producedWhilePaused = 0
  let rssWhilePaused = 0
  const result = await download(`${proxy.url}/down/file`, async () => {
    const rss = rssWatcher()
    // Long enough for a buffering proxy to pull everything over loopback.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    producedWhilePaused = source?.produced() ?? 0
    rssWhilePaused = rss.stop()
  })
  assert.equal(result.status, 200)
  assert.equal(result.bytes, BIG)
  assert.equal(result.sha256, source?.sha256())
  assert.ok(producedWhilePaused < 24 * MiB, `while the client was not reading the upstream still sent ${(producedWhilePaused / MiB).toFixed(1)} MiB`)
  assert.ok(rssWhilePaused < MAX_RSS_GROWTH, `RSS grew by ${(rssWhilePaused / MiB).toFixed(1)} MiB while the client was not reading`)
})

test('50 MiB up and 50 MiB down at once arrive intact with bounded memory', async (t) => {
  let down: ReturnType<typeof generated> | undefined
  const upstream = await listen(t, async (req, res) => {
    if (req.method === 'PUT') {
      const hash = createHash('sha256')
      let bytes = 0
      for await (const chunk of req) {
        bytes += (chunk as Buffer).length
        hash.update(chunk as Buffer)
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes, sha256: hash.digest('hex') }))
      return
    }
    down = generated(BIG)
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    await pipeline(down.stream, res).catch(() => {})
  })
  const proxy = await startProxy(t, { routes: { big: { upstream: upstream.url, auth: staticAuth } } })

  const up = generated(BIG)
  const rss = rssWatcher()
  const [uploaded, downloaded] = await Promise.all([
    rawRequest(proxy.url, { method: 'PUT', path: '/big/upload', headers: { 'content-type': 'application/octet-stream' }, body: up.stream }),
    download(`${proxy.url}/big/download`)
  ])
  const growth = rss.stop()

  assert.equal(uploaded.status, 200)
  const received = JSON.parse(uploaded.body.toString('utf8')) as { bytes: number, sha256: string }
  assert.equal(received.bytes, BIG)
  assert.equal(received.sha256, up.sha256(), 'the upstream received exactly what the client sent')
  assert.equal(downloaded.status, 200)
  assert.equal(downloaded.bytes, BIG)
  assert.equal(downloaded.sha256, down?.sha256(), 'the client received exactly what the upstream sent')
  assert.ok(growth < MAX_RSS_GROWTH, `RSS grew by ${(growth / MiB).toFixed(1)} MiB for 100 MiB streamed`)
})

test('a client that goes away mid-download ends the upstream request, and the proxy keeps serving', async (t) => {
  let upstreamClosed: (() => void) | undefined
  const closed = new Promise<void>((resolve) => { upstreamClosed = resolve })
  let sentWhenClosed = 0
  const upstream = await listen(t, (req, res: ServerResponse) => {
    if (req.url !== '/endless') {
      res.end('fine')
      return
    }
    // An answer with no end: only the proxy aborting its request stops it.
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    let sent = 0
    const timer = setInterval(() => { sent += CHUNK; res.write(Buffer.alloc(CHUNK)) }, 5)
    res.once('close', () => { clearInterval(timer); sentWhenClosed = sent; upstreamClosed?.() })
  })
  const proxy = await startProxy(t, { routes: { down: { upstream: upstream.url, auth: staticAuth } } })

  await new Promise<void>((resolve, reject) => {
    const req = request(`${proxy.url}/down/endless`, (res) => {
      let got = 0
      res.on('data', (chunk: Buffer) => {
        got += chunk.length
        if (got >= 4 * CHUNK) req.destroy()
      })
      res.once('close', () => resolve())
    })
    req.once('error', (err) => { if (!req.destroyed) reject(err) })
    req.end()
  })
  const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((resolve) => setTimeout(resolve, WAIT_MS, 'still sending'))])
  assert.equal(outcome, 'closed', 'the upstream request outlived the client')
  assert.ok(sentWhenClosed > 0)
  const after = await rawRequest(proxy.url, { path: '/down/after' })
  assert.equal(after.status, 200, 'the proxy still serves')
})
