/**
 * Bench child: the upstream API and a client_credentials token endpoint, in one
 * process on two loopback ports. Prints `{"port":…,"tokenPort":…}` on stdout.
 *
 * The upstream answers only requests carrying `Bearer static-token` (the
 * static variants) or an unexpired token issued by the token endpoint (as
 * `Bearer`, or as `DPoP` with a proof it does not check), else 401; `GET /_auth` tells the last Authorization header it saw and
 * `GET /_count` how many tokens were issued and requests refused.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

const STATIC_AUTH = 'Bearer static-token'
const MIB = 1024 * 1024
const SMALL = Buffer.from(JSON.stringify({
  id: 42,
  name: 'bench',
  status: 'ok',
  tags: ['alpha', 'beta', 'gamma'],
  description: 'a small JSON answer of about two hundred bytes, for the request rate benchmark',
  updated: '2026-01-01T00:00:00Z'
}))
const ONE_MIB = Buffer.alloc(MIB, 'a')
const CHUNK = Buffer.alloc(64 * 1024, 'b')

/** Issued token → expiry (epoch ms). */
const issued = new Map<string, number>()
let tokenRequests = 0
let lastIssued: string | null = null
let refused = 0
let lastAuth: string | null = null
let lastDpop = false

function authorized (req: IncomingMessage): boolean {
  const header = req.headers.authorization
  lastAuth = header ?? null
  lastDpop = typeof req.headers.dpop === 'string'
  if (header === STATIC_AUTH) return true
  // A DPoP-bound token comes with a proof; the bench checks the token, not the proof.
  const token = header?.startsWith('Bearer ') === true ? header.slice(7) : header?.startsWith('DPoP ') === true && lastDpop ? header.slice(5) : undefined
  if (token === undefined) return false
  const expiresAt = issued.get(token)
  return expiresAt !== undefined && Date.now() < expiresAt
}

function json (res: ServerResponse, status: number, body: unknown): void {
  const text = Buffer.from(JSON.stringify(body))
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': text.length })
  res.end(text)
}

function countBody (req: IncomingMessage, res: ServerResponse): void {
  let bytes = 0
  req.on('data', (chunk: Buffer) => { bytes += chunk.length })
  req.on('end', () => json(res, 200, { bytes }))
}

function stream (res: ServerResponse, total: number): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total })
  let left = total
  const write = (): void => {
    while (left > 0) {
      const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left)
      left -= chunk.length
      if (!res.write(chunk)) {
        res.once('drain', write)
        return
      }
    }
    res.end()
  }
  write()
}

function api (req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://upstream')
  if (req.method === 'GET' && url.pathname === '/_auth') return json(res, 200, { authorization: lastAuth, dpop: lastDpop })
  if (req.method === 'GET' && url.pathname === '/_count') return json(res, 200, { tokenRequests, lastIssued, refused })
  if (!authorized(req)) {
    refused++
    req.resume()
    return json(res, 401, { error: 'invalid_token' })
  }
  const route = `${req.method ?? ''} ${url.pathname}`
  switch (route) {
    case 'GET /small':
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': SMALL.length })
      res.end(SMALL)
      return
    case 'GET /1mib':
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': ONE_MIB.length })
      res.end(ONE_MIB)
      return
    case 'POST /upload':
    case 'POST /sink':
      return countBody(req, res)
    case 'GET /stream':
      return stream(res, Number(url.searchParams.get('bytes') ?? MIB))
    default:
      req.resume()
      return json(res, 404, { error: 'not_found' })
  }
}

function tokenEndpoint (req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://token')
  if (req.method !== 'POST' || url.pathname !== '/token') {
    req.resume()
    return json(res, 404, { error: 'not_found' })
  }
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => {
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
    if (form.get('grant_type') !== 'client_credentials') return json(res, 400, { error: 'unsupported_grant_type' })
    tokenRequests++
    const ttl = Number(url.searchParams.get('ttl') ?? 3600)
    const token = `bench-${tokenRequests}-${randomBytes(8).toString('hex')}`
    issued.set(token, Date.now() + ttl * 1000)
    lastIssued = token
    // A token request with a DPoP proof gets a DPoP-bound token (RFC 9449 §5).
    json(res, 200, { access_token: token, token_type: typeof req.headers.dpop === 'string' ? 'DPoP' : 'Bearer', expires_in: ttl })
  })
}

async function listen (server: Server): Promise<number> {
  // Long keep-alive, so pooled proxy connections are not closed under them between measurements.
  server.keepAliveTimeout = 120_000
  server.requestTimeout = 0
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  return (server.address() as AddressInfo).port
}

const port = await listen(createServer(api))
const tokenPort = await listen(createServer(tokenEndpoint))
process.stdout.write(`${JSON.stringify({ port, tokenPort })}\n`)
