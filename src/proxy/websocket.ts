import { ServerResponse, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type WebSocket from 'ws'
import type { WebSocketServer } from 'ws'
import type { Metrics } from '../telemetry/metrics.js'
import type { CredentialHeaders, RouteCredential } from '../auth/credential.js'
import type { RouteConfig } from '../config/schema.js'
import { BadRequestError, UpstreamTimeoutError } from '../errors.js'
import { sendError, upstreamFailure } from './error-reply.js'
import { grantOrigin } from './guards.js'
import { cleanResponseHeaders, upstreamRequestHeaders } from './headers.js'
import { locationRewriter } from './location.js'
import { requestEnded } from './request-log.js'
import type { TransportTls } from './transport.js'
import { pathOf, upstreamPath, upstreamTarget } from './upstream.js'

/**
 * The largest websocket message relayed either way (ws's own default is 100 MiB).
 * A message is whole in memory before it is passed on, so this bounds what one
 * session can hold; a bigger one closes that side with 1009 (message too big).
 */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024
/** Past this many bytes queued towards one side, the other side is no longer read... */
const HIGH_WATER_BYTES = 1024 * 1024
/** ...until its queue is down to this. */
const LOW_WATER_BYTES = 256 * 1024
/** The most of an upstream's handshake refusal passed on: it is read whole before the client gets it. */
const REFUSAL_BODY_BYTES = 64 * 1024
/** Close codes (RFC 6455 §7.4.1, IANA registry) sent to one side when the other left without a close frame or broke the protocol. */
const GOING_AWAY = 1001
const BAD_GATEWAY = 1014

/** Bytes a client may send before its `101` (it should send none) kept for the session; more ends the connection. */
const EARLY_BYTES = 64 * 1024
/** A valid Sec-WebSocket-Key (RFC 6455 §4.1: 16 random bytes, base64). */
const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/
/** An RFC 7230 token: what a subprotocol name must be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

type Ws = typeof import('ws')
/** ws, once loaded. */
let wsModule: Ws | undefined
let loadingWs: Promise<Ws> | undefined

/**
 * ws is loaded by the first upgrade request, not at start-up: most proxies
 * never relay a websocket, and it is a good part of what a start loads.
 */
async function loadWs (): Promise<Ws> {
  loadingWs ??= import('ws').then((module) => {
    wsModule = module
    return module
  })
  return await loadingWs
}

/**
 * The route constraint that sends requests naming `Upgrade: websocket` to the
 * route's websocket handler, while every other request takes the plain one.
 */
export const websocketConstraint = {
  name: 'upgrade',
  mustMatchWhenDerived: false,
  validate (value: unknown) {
    if (value !== 'websocket') throw new Error('the upgrade constraint only takes "websocket"')
  },
  storage () {
    const handlers = new Map<string, unknown>()
    return { get: (value: string) => handlers.get(value) ?? null, set: (value: string, handler: unknown) => { handlers.set(value, handler) } }
  },
  deriveConstraint: (req: { headers: Record<string, string | string[] | undefined> }) => {
    const upgrade = req.headers.upgrade
    return typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket' ? 'websocket' : undefined
  }
}

/** An upgrade request's connection while its answer is being decided. */
class PendingUpgrade {
  readonly socket: Duplex
  readonly #early: Buffer[] = []
  #length = 0

  constructor (socket: Duplex, head: Buffer) {
    this.socket = socket
    if (head.length > 0) this.#keep(head)
    // Read while the upstream decides: a connection nobody reads never notices its client left.
    socket.on('data', this.#onData)
    socket.on('end', this.#onEnd)
  }

  readonly #onData = (chunk: Buffer): void => this.#keep(chunk)
  // Node lets upgraded connections stay half-open: a client that ended its side is gone.
  readonly #onEnd = (): void => { this.socket.destroy() }

  #keep (chunk: Buffer): void {
    this.#length += chunk.length
    if (this.#length > EARLY_BYTES) this.socket.destroy()
    else this.#early.push(chunk)
  }

  /** Stops reading, for the session to take over: returns what arrived past the request head. */
  release (): Buffer {
    this.socket.removeListener('data', this.#onData)
    this.socket.removeListener('end', this.#onEnd)
    this.socket.pause()
    return Buffer.concat(this.#early)
  }
}

interface Session {
  client: WebSocket
  upstream: WebSocket
}

/**
 * The upgrades of one app. Node hands an upgrade request over with its bare
 * connection; it is routed through the app like any request (so the guards
 * run first, and their refusals are JSON answers on that connection), and the
 * route's handler answers `101` only once the upstream has accepted.
 */
export class WebsocketUpgrades {
  /** Upgrade requests not yet taken by a route's handler. */
  readonly #pending = new WeakMap<IncomingMessage, PendingUpgrade>()
  /** The subprotocol the upstream chose, answered to the client in the same `101`. */
  readonly #protocols = new WeakMap<IncomingMessage, string>()
  readonly #sessions = new Set<Session>()
  /** Every upgraded connection still open: a handshake's or a session's. */
  readonly #sockets = new Set<Duplex>()
  /** Made by the first accepted upgrade (ws is loaded by then). */
  #server: WebSocketServer | undefined

  #closing = false

  constructor (app: FastifyInstance) {
    app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Loads while the request is routed and its credential is got; a failure shows at the handshake.
      loadWs().catch(() => {})
      // Node stops listening for errors on an upgraded connection: a reset would otherwise crash the process.
      socket.on('error', () => socket.destroy())
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
      this.#pending.set(req, new PendingUpgrade(socket, head))
      const res = new ServerResponse(req)
      res.shouldKeepAlive = false
      res.assignSocket(socket as never)
      // An HTTP answer (a refusal) ends the connection: it was asked to change protocol, not to carry more requests.
      res.once('finish', () => socket.destroy())
      app.routing(req, res)
    })
  }

  /** The connection of an upgrade request, once: undefined for a plain request that only names `Upgrade: websocket`. */
  take (req: IncomingMessage): PendingUpgrade | undefined {
    const pending = this.#pending.get(req)
    this.#pending.delete(req)
    return pending
  }

  /** Answers `101` on the client's connection with the upstream's subprotocol; `use` gets the client's side. */
  accept (req: IncomingMessage, pending: PendingUpgrade, protocol: string, use: (client: WebSocket) => void): void {
    if (protocol !== '') this.#protocols.set(req, protocol)
    this.#server ??= new (wsModule as Ws).WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: MAX_MESSAGE_BYTES,
      // Each leg negotiates its own extensions; messages are relayed whole, not frame by frame.
      perMessageDeflate: false,
      handleProtocols: (_offered, request) => this.#protocols.get(request) ?? false
    })
    this.#server.handleUpgrade(req, pending.socket, pending.release(), (client) => {
      // ws listens for the connection's data now; release() had paused it, and a listener added
      // to a stream paused on purpose does not start it.
      pending.socket.resume()
      use(client)
    })
  }

  /** Upgraded connections still open (handshakes and sessions): the listening server waits for them. */
  get open (): number {
    return this.#sockets.size
  }

  track (session: Session): void {
    this.#sessions.add(session)
    if (this.#closing) closeSession(session, false)
  }

  untrack (session: Session): void {
    this.#sessions.delete(session)
  }

  /**
   * Sessions never end by themselves, so closing does not wait for them: each
   * side gets 1001 (going away), also a session that starts later; with
   * `force` every upgraded connection is cut, handshakes too.
   */
  close (force: boolean): void {
    this.#closing = true
    for (const session of this.#sessions) closeSession(session, force)
    if (force) for (const socket of this.#sockets) socket.destroy()
  }
}

function closeSession ({ client, upstream }: Session, force: boolean): void {
  for (const side of [client, upstream]) {
    if (force) side.terminate()
    else side.close(GOING_AWAY, 'proxy shutting down')
  }
}

export interface WebsocketRouteParts {
  route: RouteConfig
  credential: RouteCredential
  /** The route transport's TLS options: the handshake connects outside its pool. */
  tls: TransportTls
  metrics: Metrics
  upgrades: WebsocketUpgrades
}

type Handler = (request: FastifyRequest, reply: FastifyReply) => void

/**
 * The handler of a route's websocket upgrades. The upstream handshake carries
 * the route's credential and the client's headers less its own credentials,
 * hop-by-hop headers and (unless `forwardCookies`) its cookies. The client
 * gets its `101` only once the upstream accepted; a refusal the credential
 * cures (a `retryOn` status, its token dropped) is tried once more with new
 * credential headers; the route's `timeout` bounds each handshake
 * (504); any other refusal is passed on, and a failed connection is a 502.
 * A request that names websocket without asking to upgrade its connection is
 * a plain request, for `plain`.
 */
export function websocketHandler ({ route, credential, tls, metrics, upgrades }: WebsocketRouteParts, plain: Handler): Handler {
  const upstream = upstreamTarget(route.upstream, route.prefix)
  const wsOrigin = upstream.origin.replace(/^http/, 'ws')
  const rewriteLocation = locationRewriter(route.upstream, route.prefix)

  return function upgrade (request, reply) {
    const taken = upgrades.take(request.raw)
    if (taken === undefined) {
      plain(request, reply)
      return
    }
    const pending = taken
    const socket = pending.socket
    const protocols = offeredProtocols(request.headers['sec-websocket-protocol'])
    const problem = handshakeProblem(request.method, request.headers, protocols)
    if (problem !== undefined) {
      sendError(request, reply, new BadRequestError(problem))
      return
    }

    /** The upstream handshake in progress. */
    let attempt: WebSocket | undefined
    /** Whether the client has its answer (a refusal or the 101), or is gone. */
    let answered = false
    // Until the session starts: a client gone before its answer ends the handshake and is logged
    // (499); one whose refusal went out was logged when it did.
    const gone = (): void => {
      answered = true
      attempt?.terminate()
      requestEnded(request, reply, metrics)
    }
    socket.once('close', gone)
    const refuse = (err: FastifyError): void => {
      if (answered) return
      answered = true
      sendError(request, reply, err)
    }
    const upstreamFailed = (err: FastifyError): void => {
      metrics.upstreamError(route.name, err.code)
      refuse(err)
    }

    const target = upstreamPath(upstream, request.url)
    withCredential(false)

    /** The handshake with the credential's headers: at once when they are in hand. */
    function withCredential (retried: boolean): void {
      let sent: CredentialHeaders | Promise<CredentialHeaders>
      try {
        sent = credential.headersFor({ method: 'GET', url: upstream.origin + target })
      } catch (err) {
        // Token requests are backing off.
        refuse(err as FastifyError)
        return
      }
      if (sent instanceof Promise) sent.then((s) => handshake(s, retried), refuse)
      else handshake(sent, retried)
    }

    function handshake (sent: CredentialHeaders, retried: boolean): void {
      // The client left while the credential was on its way.
      if (answered) return
      if (wsModule === undefined) {
        loadWs().then(() => handshake(sent, retried), refuse)
        return
      }
      const { default: Client } = wsModule
      const ws = attempt = new Client(wsOrigin + target, protocols, {
        // The route transport's TLS options, certificate verification stated explicitly among them:
        // NODE_TLS_REJECT_UNAUTHORIZED=0 must not turn verification off here.
        ...tls,
        headers: handshakeHeaders(request.headers, upstream.host, sent.headers, route.forwardCookies),
        maxPayload: MAX_MESSAGE_BYTES,
        followRedirects: false
      })
      let settled = false
      /** Whether this call decides the attempt's outcome; the timer is done either way. */
      const settle = (): boolean => {
        clearTimeout(timer)
        if (settled || answered) return false
        settled = true
        return true
      }
      // The whole handshake, refusal body included, within the route's timeout.
      const timer = setTimeout(() => {
        if (settled || answered) return
        settled = true
        ws.terminate()
        upstreamFailed(new UpstreamTimeoutError(route.timeout))
      }, route.timeout)
      // After the outcome, errors of the abandoned attempt are expected and ignored.
      ws.on('error', (err: Error & { code?: string }) => {
        if (settle()) upstreamFailed(upstreamFailure(err, route.timeout))
      })
      ws.once('unexpected-response', (_req, res) => {
        if (settled || answered) return
        const status = res.statusCode ?? 502
        // The credential hears of every refusal, a retry's too: a refused token is dropped even
        // when the handshake is not tried again, so the next request gets a new one.
        if (credential.answered(sent, status, res.headers) && !retried) {
          settle()
          ws.terminate()
          metrics.replay(route.name)
          withCredential(true)
          return
        }
        readCapped(res, REFUSAL_BODY_BYTES).then((body) => {
          if (!settle()) return
          ws.terminate()
          passRefusal(status, res.headers, body)
        }, (err: Error & { code?: string }) => {
          if (settle()) upstreamFailed(upstreamFailure(err, route.timeout))
        })
      })
      ws.once('open', () => {
        if (!settle()) {
          ws.terminate()
          return
        }
        // Nothing is read from the upstream until the client's side is there to take it.
        ws.pause()
        reply.raw.detachSocket(socket as never)
        upgrades.accept(request.raw, pending, ws.protocol, (client) => {
          answered = true
          socket.removeListener('close', gone)
          // The session writes its own log line when it ends.
          request.requestLogged = true
          relaySession(client, ws)
          ws.resume()
        })
      })
    }

    /** The upstream's own refusal, its body cut at REFUSAL_BODY_BYTES. */
    function passRefusal (status: number, upstreamHeaders: IncomingHttpHeaders, body: Buffer): void {
      if (answered) return
      answered = true
      const headers = cleanResponseHeaders(upstreamHeaders)
      // The body is sent as read (maybe cut short), framed by Node; a cookie set on a
      // refused handshake is not passed on.
      delete headers['content-length']
      delete headers['set-cookie']
      if (typeof headers.location === 'string') headers.location = rewriteLocation(headers.location)
      if (request.headers.origin !== undefined) grantOrigin(headers, request.headers.origin)
      reply.code(status).headers(headers).send(body)
    }

    function relaySession (client: WebSocket, upstreamSide: WebSocket): void {
      const session: Session = { client, upstream: upstreamSide }
      const counts = { toUpstream: 0, toClient: 0 }
      relay(client, upstreamSide, (bytes) => { counts.toUpstream += bytes })
      relay(upstreamSide, client, (bytes) => { counts.toClient += bytes })
      const failed = { client: false, upstream: false }
      client.on('error', () => { failed.client = true })
      upstreamSide.on('error', () => { failed.upstream = true })
      let first: { side: 'client' | 'upstream', code: number } | undefined
      let open = 2
      const closed = (side: 'client' | 'upstream') => (code: number, reason: Buffer): void => {
        if (first === undefined) {
          first = { side, code }
          const other = side === 'client' ? upstreamSide : client
          // A close frame is passed on as it came; a side that vanished or broke the protocol
          // is reported to the other as going away (the client) or a bad gateway (the upstream).
          const lost = failed[side] || code === 1006
          closeWith(other, lost ? (side === 'client' ? GOING_AWAY : BAD_GATEWAY) : code, lost ? '' : reason)
          // Held back for this side, the other would never read its close frame: what it still
          // sends is dropped (see relay), nothing is buffered.
          other.resume()
        }
        if (--open > 0) return
        upgrades.untrack(session)
        metrics.websocketSession(route.name)
        request.log.info({
          route: route.name,
          method: request.method,
          path: pathOf(request.url),
          status: 101,
          ms: Math.round(reply.elapsedTime * 10) / 10,
          bytesToUpstream: counts.toUpstream,
          bytesToClient: counts.toClient,
          closeCode: first.code,
          closedBy: first.side
        }, 'websocket')
      }
      client.once('close', closed('client'))
      upstreamSide.once('close', closed('upstream'))
      upgrades.track(session)
    }
  }
}

/**
 * Relays `from`'s messages to `to`. While more than HIGH_WATER_BYTES wait to go
 * out to `to`, `from` is not read, so its sender is held back by TCP rather
 * than the proxy holding what `to` does not take.
 */
function relay (from: WebSocket, to: WebSocket, count: (bytes: number) => void): void {
  let held = false
  // Called as each message is written out: the queue towards `to` is shorter.
  const sent = (): void => {
    if (held && to.bufferedAmount <= LOW_WATER_BYTES) {
      held = false
      from.resume()
    }
  }
  from.on('message', (data, isBinary) => {
    // Closing: ws would drop the message but count it as buffered, which would hold `from` back
    // again and keep its close frame unread.
    if (to.readyState !== to.OPEN) return
    // binaryType is nodebuffer: a whole message is one Buffer.
    const message = data as Buffer
    count(message.length)
    to.send(message, { binary: isBinary }, sent)
    if (!held && to.bufferedAmount > HIGH_WATER_BYTES) {
      held = true
      from.pause()
    }
  })
}

/** Closes `ws` with `code` when it is one that may be sent (1005 "no status" is sent as none), else 1011. */
function closeWith (ws: WebSocket, code: number, reason: Buffer | ''): void {
  if (code === 1005) {
    ws.close()
    return
  }
  try {
    ws.close(code, reason)
  } catch {
    ws.close(1011)
  }
}

/** The subprotocols the client offers, in its order. */
function offeredProtocols (header: string | undefined): string[] {
  if (header === undefined) return []
  return header.split(',').map((p) => p.trim())
}

/** What makes the client's handshake one ws would refuse: checked before any token or upstream work. */
function handshakeProblem (method: string, headers: IncomingHttpHeaders, protocols: string[]): string | undefined {
  // fastify adds a HEAD route beside each GET one.
  if (method !== 'GET') return 'a websocket upgrade must be a GET request'
  const key = headers['sec-websocket-key']
  if (key === undefined || !WEBSOCKET_KEY.test(key)) return 'missing or invalid Sec-WebSocket-Key header'
  const version = headers['sec-websocket-version']
  if (version !== '13' && version !== '8') return 'missing or unsupported Sec-WebSocket-Version header (13 is supported)'
  if (protocols.some((p) => !TOKEN.test(p)) || new Set(protocols).size !== protocols.length) return 'invalid Sec-WebSocket-Protocol header'
  return undefined
}

/**
 * The upstream handshake's headers: the client's less its own credentials,
 * hop-by-hop headers and its websocket handshake fields (ws writes the
 * upstream leg's own), cookies only on routes that forward them, with the
 * upstream's Host and the route's credential set last.
 */
function handshakeHeaders (client: IncomingHttpHeaders, host: string, credential: ReadonlyArray<readonly [string, string]>, forwardCookies: boolean): Record<string, string> {
  const kept: IncomingHttpHeaders = {}
  for (const name in client) {
    if (!name.startsWith('sec-websocket-')) kept[name] = client[name]
  }
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(upstreamRequestHeaders(kept, host, credential, forwardCookies))) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return headers
}

/** Reads up to `limit` bytes of `res`; the rest is dropped. */
async function readCapped (res: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let length = 0
  for await (const chunk of res) {
    const buffer = chunk as Buffer
    chunks.push(buffer.subarray(0, limit - length))
    length += Math.min(buffer.length, limit - length)
    if (length >= limit) {
      res.destroy()
      break
    }
  }
  return Buffer.concat(chunks)
}
