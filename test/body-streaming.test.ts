import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { test } from 'node:test'
import { listen, recordingUpstream, sendJson, startProxy } from './helpers.js'
import { rawRequest } from './proxy-http-helpers.js'

const MiB = 1024 * 1024
const BIG = 20 * MiB
const FIRST_PART = 256 * 1024
const staticAuth = { type: 'static', token: 'route-key-1234' } as const

function sha256 (data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Resolves when `signal()` is called; rejects after `ms` so no wait is unbounded. */
function gate (ms: number, what: string): { signal: () => void, wait: () => Promise<void> } {
  let open!: () => void
  const opened = new Promise<void>((resolve) => { open = resolve })
  return {
    signal: () => open(),
    wait: async () => {
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms) })
      try {
        await Promise.race([opened, late])
      } finally {
        clearTimeout(timer)
      }
    }
  }
}

interface UploadResult { bytes: number, sha256: string }

/**
 * An upstream that hashes what it receives and opens `firstBytes` as soon as
 * the first chunk arrives: that is before the client has finished sending only
 * if the proxy streams.
 */
async function hashingUpstream (t: Parameters<typeof listen>[0], firstBytes: { signal: () => void }) {
  return await listen(t, async (req, res) => {
    const hash = createHash('sha256')
    let bytes = 0
    for await (const chunk of req) {
      if (bytes === 0) firstBytes.signal()
      bytes += (chunk as Buffer).length
      hash.update(chunk as Buffer)
    }
    sendJson(res, 200, { bytes, sha256: hash.digest('hex'), contentLength: req.headers['content-length'] ?? null, chunked: req.headers['transfer-encoding'] ?? null })
  })
}

/** Sends the first part, waits until the upstream has seen bytes, then sends the rest. */
async function gatedUpload (url: string, data: Buffer, withLength: boolean, upstreamSawBytes: () => Promise<void>): Promise<UploadResult & { status: number, contentLength: string | null, chunked: string | null }> {
  const target = new URL(url)
  return await new Promise((resolve, reject) => {
    const req = request({ host: target.hostname, port: target.port, path: target.pathname, method: 'PUT', agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.once('end', () => resolve({ status: res.statusCode ?? 0, ...JSON.parse(Buffer.concat(chunks).toString()) }))
      res.once('error', reject)
    })
    req.once('error', reject)
    req.setHeader('content-type', 'application/octet-stream')
    if (withLength) req.setHeader('content-length', String(data.length))
    req.write(data.subarray(0, FIRST_PART))
    upstreamSawBytes().then(() => req.end(data.subarray(FIRST_PART)), (err: unknown) => { req.destroy(); reject(err) })
  })
}

test('a 20 MiB chunked upload streams to the upstream intact', async (t) => {
  const data = randomBytes(BIG)
  const firstBytes = gate(5000, 'the upstream saw no byte of the upload before it finished')
  const upstream = await hashingUpstream(t, firstBytes)
  const proxy = await startProxy(t, { routes: { up: { upstream: upstream.url, auth: staticAuth } } })

  const result = await gatedUpload(`${proxy.url}/up/file`, data, false, firstBytes.wait)
  assert.equal(result.status, 200)
  assert.equal(result.bytes, BIG)
  assert.equal(result.sha256, sha256(data))
})

test('a 20 MiB upload with content-length streams to the upstream intact', async (t) => {
  const data = randomBytes(BIG)
  const firstBytes = gate(5000, 'the upstream saw no byte of the upload before it finished')
  const upstream = await hashingUpstream(t, firstBytes)
  const proxy = await startProxy(t, { routes: { up: { upstream: upstream.url, auth: staticAuth } } })

  const result = await gatedUpload(`${proxy.url}/up/file`, data, true, firstBytes.wait)
  assert.equal(result.status, 200)
  assert.equal(result.bytes, BIG)
  assert.equal(result.sha256, sha256(data))
  assert.equal(result.contentLength, String(BIG))
})

test('a 20 MiB download streams to the client intact', async (t) => {
  const data = randomBytes(BIG)
  const clientGotBytes = gate(5000, 'the client got no byte of the download before it finished')
  const upstream = await listen(t, async (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    res.write(data.subarray(0, FIRST_PART))
    // The rest is only sent once the first part has crossed the proxy: a buffering proxy fails here.
    await clientGotBytes.wait()
    res.end(data.subarray(FIRST_PART))
  })
  const proxy = await startProxy(t, { routes: { down: { upstream: upstream.url, auth: staticAuth } } })

  const { status, bytes, digest } = await new Promise<{ status: number, bytes: number, digest: string }>((resolve, reject) => {
    const req = request(`${proxy.url}/down/file`, { agent: false }, (res) => {
      const hash = createHash('sha256')
      let bytes = 0
      res.on('data', (chunk: Buffer) => {
        if (bytes === 0) clientGotBytes.signal()
        bytes += chunk.length
        hash.update(chunk)
      })
      res.once('end', () => resolve({ status: res.statusCode ?? 0, bytes, digest: hash.digest('hex') }))
      res.once('error', reject)
    })
    req.once('error', reject)
    req.end()
  })
  assert.equal(status, 200)
  assert.equal(bytes, BIG)
  assert.equal(digest, sha256(data))
})

test('POST, PUT, PATCH and DELETE forward their bodies', async (t) => {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, auth: staticAuth } } })

  const methods = ['POST', 'PUT', 'PATCH', 'DELETE']
  for (const method of methods) {
    const body = JSON.stringify({ method, note: 'ünïcode ✓' })
    const res = await rawRequest(proxy.url, { method, path: `/api/things/${method}`, headers: { 'content-type': 'application/json' }, body })
    assert.equal(res.status, 200, method)
  }
  assert.equal(upstream.requests.length, methods.length)
  for (const [i, method] of methods.entries()) {
    const got = upstream.requests[i]
    assert.ok(got !== undefined)
    assert.equal(got.method, method)
    assert.equal(got.url, `/things/${method}`)
    assert.equal(got.headers['content-type'], 'application/json')
    assert.equal(got.body.toString('utf8'), JSON.stringify({ method, note: 'ünïcode ✓' }))
  }
})

test('a POST without content-type still forwards its body', async (t) => {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, auth: staticAuth } } })

  const body = Buffer.from([0, 1, 2, 255, 254, 10, 13, 0])
  const res = await rawRequest(proxy.url, { method: 'POST', path: '/api/raw', body })
  assert.equal(res.status, 200)
  const got = upstream.requests[0]
  assert.ok(got !== undefined)
  assert.equal(got.headers['content-type'], undefined)
  assert.deepEqual(got.body, body)
})

test('an empty POST is forwarded', async (t) => {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, auth: staticAuth } } })

  const withLength = await rawRequest(proxy.url, { method: 'POST', path: '/api/empty', headers: { 'content-length': '0' }, body: '' })
  const withType = await rawRequest(proxy.url, { method: 'POST', path: '/api/empty-json', headers: { 'content-type': 'application/json', 'content-length': '0' }, body: '' })
  assert.equal(withLength.status, 200)
  assert.equal(withType.status, 200)
  assert.deepEqual(upstream.requests.map((r) => [r.method, r.url, r.body.length]), [['POST', '/empty', 0], ['POST', '/empty-json', 0]])
})

test('an upload sent with Expect: 100-continue streams through (curl does this for large bodies)', async (t) => {
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { up: { upstream: upstream.url, auth: { type: 'static', token: 'static-key-1234' } } } })
  const body = randomBytes(2 * 1024 * 1024)
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(`${proxy.url}/up/file`, { method: 'PUT', agent: false, headers: { expect: '100-continue', 'content-length': String(body.length) } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    // The client sends the body only once the proxy said 100 Continue.
    req.on('continue', () => req.end(body))
  })
  assert.equal(status, 200)
  assert.equal(upstream.requests.length, 1)
  assert.ok(upstream.requests[0]?.body.equals(body), 'the upstream got the whole body')
  assert.equal(upstream.requests[0]?.headers.expect, undefined, 'Expect is a hop-by-hop request to the proxy')
})
