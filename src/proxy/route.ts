import httpProxy from '@fastify/http-proxy'
import { Readable } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Agent, type Dispatcher } from 'undici'
import type { Metrics } from '../admin/metrics.js'
import type { TokenBroker } from '../auth/broker.js'
import type { TokenSet } from '../auth/token.js'
import type { RouteConfig } from '../config/schema.js'
import { RequestTimeoutError, UpstreamUnavailableError } from '../errors.js'
import { keepSmallBodies, ReplayableBody } from './body.js'
import { sendError, upstreamFailure } from './error-reply.js'
import { grantOrigin } from './guards.js'
import { cleanResponseHeaders, upstreamRequestHeaders } from './headers.js'
import { locationRewriter } from './location.js'
import { upstreamPath, upstreamTarget } from './upstream.js'
import { watchExchange } from './exchange-watch.js'

/** Per-request state of a proxied request. */
export interface ProxyState {
  /** The token this request was sent with: the one to drop on a `retryOn` answer. */
  token: TokenSet
  /** The upstream path and query. */
  target: string
  /** The body kept for a replay, released once the answer is sent. */
  body?: ReplayableBody
  replayed: boolean
  /** Whether the exchange watch has it (uploads, and answers that stream). */
  watched?: boolean
}

declare module 'fastify' {
  interface FastifyRequest {
    proxyState: ProxyState | null
  }
}

type UpstreamAnswer = Dispatcher.ResponseData

const HTTP_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']

/** Answers up to this size (by Content-Length) are read whole and sent in one write. */
const SMALL_ANSWER_BYTES = 64 * 1024
/** A refused answer's body is read (so its connection can be reused) up to this size before a replay. */
const DRAIN_LIMIT_BYTES = 128 * 1024

/**
 * The route constraint that sends websocket upgrades to @fastify/http-proxy's
 * websocket proxy, while every plain request takes the route's own handler.
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

/** Upstream connections of one route: its own pool, certificates always verified. */
export function createRouteDispatcher (): Dispatcher {
  return new Agent({ connect: { rejectUnauthorized: true }, keepAliveTimeout: 10_000 })
}

export interface RouteParts {
  route: RouteConfig
  broker: TokenBroker
  dispatcher: Dispatcher
  metrics: Metrics
}

/**
 * One config route: `prefix` → `upstream`. The broker's token is obtained in
 * the handler and set while the request headers are built; the request goes to
 * the route's undici dispatcher, and after a `retryOn` answer it is sent once
 * more with a fresh token when its body was kept. Websocket upgrades go through
 * @fastify/http-proxy, with the same hooks and token.
 */
export function registerRoute (app: FastifyInstance, { route, broker, dispatcher, metrics }: RouteParts): void {
  const retryOn = new Set(route.retryOn)
  // A static key would come back the same: dropping it or replaying with it only repeats the refusal.
  const renewable = broker.scheme.endpoint !== undefined
  const rewriteLocation = locationRewriter(route.upstream, route.prefix)
  const upstream = upstreamTarget(route.upstream, route.prefix)
  const localPrefix = route.prefix === '/' ? '' : route.prefix
  const config = { bearerRoute: { name: route.name, prefix: route.prefix } }

  /** The websocket route's preHandler: the token is in hand before http-proxy builds the upstream handshake. */
  function preHandler (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void {
    withToken((token) => { request.proxyState = { token, target: '', replayed: false }; done() }, done)
  }

  /** Plain requests: the token is fetched here rather than in a preHandler, a hook stage fewer per request. */
  function handler (request: FastifyRequest, reply: FastifyReply): void {
    withToken((token) => {
      const state: ProxyState = { token, target: upstreamPath(upstream, request.url), replayed: false }
      if (request.body instanceof ReplayableBody) state.body = request.body
      request.proxyState = state
      if (request.body !== undefined) watch(request, reply, state)
      forward(request, reply, state)
    }, (err) => sendError(request, reply, err as FastifyError))
  }

  /**
   * A client that stops sending its body, or stops reading a streamed answer, for the route's
   * timeout ends the exchange: 408 when no answer has started, else the connection is cut. Small
   * answers go out in one write that the socket buffer takes whole, so they are not watched: a
   * registration per small GET kept every finished request alive until the next check.
   */
  function watch (request: FastifyRequest, reply: FastifyReply, state: ProxyState): void {
    if (state.watched === true) return
    state.watched = true
    watchExchange(request.raw, reply.raw, route.timeout, () => stalled(request, reply))
  }

  /** Ends an exchange the client stopped moving: the upstream request is abandoned with the body it reads. */
  function stalled (request: FastifyRequest, reply: FastifyReply): void {
    const error = new RequestTimeoutError(route.timeout)
    const socket = request.raw.socket
    const abandon = (): void => {
      if (request.body instanceof Readable) request.body.destroy(error)
      socket.destroy()
    }
    if (reply.raw.headersSent) {
      abandon()
      return
    }
    reply.raw.once('finish', abandon)
    reply.header('connection', 'close')
    sendError(request, reply, error)
  }

  /** Calls `use` with the broker's token: at once when it is cached, else once it arrives. */
  function withToken (use: (token: TokenSet) => void, fail: (err: Error) => void): void {
    let token: Promise<TokenSet> | TokenSet
    try {
      token = broker.token()
    } catch (err) {
      fail(err as Error)
      return
    }
    if (token instanceof Promise) token.then(use, fail)
    else use(token)
  }

  function forward (request: FastifyRequest, reply: FastifyReply, state: ProxyState): void {
    const credential = broker.scheme.authorize(state.token, { method: request.method, url: upstream.origin + state.target })
    dispatcher.request({
      origin: upstream.origin,
      path: state.target,
      method: request.method as Dispatcher.HttpMethod,
      headers: upstreamRequestHeaders(request.headers, upstream.host, credential),
      body: request.body instanceof Readable ? request.body : null,
      headersTimeout: route.timeout,
      bodyTimeout: route.timeout
    }, (err, answer) => {
      if (err === null) {
        answered(request, reply, state, answer)
      } else if (!reply.raw.headersSent) {
        const failure = upstreamFailure(err, route.timeout)
        metrics.upstreamError(route.name, failure.code)
        sendError(request, reply, failure)
      }
    })
  }

  function answered (request: FastifyRequest, reply: FastifyReply, state: ProxyState, answer: UpstreamAnswer): void {
    // The client is gone, or was answered already (a stalled upload): the upstream's answer is dropped.
    if (request.raw.aborted || reply.raw.destroyed || reply.raw.headersSent) {
      answer.body.destroy()
      return
    }
    const refused = renewable && retryOn.has(answer.statusCode) && !state.replayed
    // Replayed only with the whole body in hand: an upstream that answered before reading it
    // all may have made undici drop the rest, and half a body must never be sent.
    const body = request.body
    if (refused && (body === undefined || (body instanceof ReplayableBody && body.complete))) {
      replay(request, reply, state, answer)
      return
    }
    // Too big to replay, but the refused token is still dropped, so the next request gets a new one.
    if (refused) broker.invalidate(state.token)
    sendAnswer(request, reply, state, answer)
  }

  function replay (request: FastifyRequest, reply: FastifyReply, state: ProxyState, answer: UpstreamAnswer): void {
    state.replayed = true
    metrics.replay(route.name)
    answer.body.dump({ limit: DRAIN_LIMIT_BYTES }).catch(() => {})
    broker.invalidate(state.token)
    // token() may throw at once (backing off): inside then() that becomes a rejection, not a crash.
    Promise.resolve().then(() => broker.token()).then((token) => {
      state.token = token
      if (state.body !== undefined) request.body = ReplayableBody.replay(state.body.kept())
      forward(request, reply, state)
    }, (err: FastifyError) => sendError(request, reply, err))
  }

  /**
   * The upstream's answer to the client, with hop-by-hop headers dropped,
   * Location pointed back at the proxy and the CORS grant for an allowed
   * Origin. A small answer with a known length is read whole first and sent
   * with its headers in a single write, which saves the stream plumbing
   * (pipe, end-of-stream listeners, extra ticks) that dominates the cost of
   * small JSON answers.
   */
  function sendAnswer (request: FastifyRequest, reply: FastifyReply, state: ProxyState, answer: UpstreamAnswer): void {
    const { statusCode, body } = answer
    if (!(statusCode >= 100 && statusCode <= 599)) {
      body.destroy()
      sendError(request, reply, new UpstreamUnavailableError(`invalid status code ${statusCode}`))
      return
    }
    const headers = cleanResponseHeaders(answer.headers)
    if (typeof headers.location === 'string') headers.location = rewriteLocation(headers.location)
    // The guards let this Origin through; the proxy's CORS grant wins over the upstream's own.
    if (request.headers.origin !== undefined) grantOrigin(headers, request.headers.origin)
    // The upstream answered before reading the whole upload: this connection cannot carry another request.
    if (!request.raw.complete) headers.connection = 'close'
    reply.code(statusCode).headers(headers)
    // No body follows, whatever Content-Length says (a 304 may carry the representation's): headers only.
    if (request.method === 'HEAD' || statusCode === 204 || statusCode === 304) {
      body.on('error', () => {}).resume()
      reply.send()
      return
    }
    const length = Number(headers['content-length'])
    if (!(length > 0 && length <= SMALL_ANSWER_BYTES)) {
      watch(request, reply, state)
      reply.send(body)
      return
    }
    const chunks: Buffer[] = []
    body.on('data', (chunk: Buffer) => chunks.push(chunk))
    // The upstream broke off mid-answer: break off the client's answer too, as a streamed one would.
    body.once('error', () => reply.raw.destroy())
    body.once('end', () => {
      if (!reply.raw.headersSent) reply.send(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
    })
  }

  app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', keepSmallBodies)
    scope.route({ url: localPrefix === '' ? '/' : localPrefix, method: HTTP_METHODS, config, handler })
    scope.route({ url: `${localPrefix}/*`, method: HTTP_METHODS, config, handler })

    // Websocket upgrades pass the same hooks (guards, token); the client's own headers stay behind,
    // the route's credential goes to the upstream. ws verifies upstream certificates by default.
    await scope.register(httpProxy, {
      upstream: route.upstream,
      prefix: localPrefix,
      constraints: { upgrade: 'websocket' },
      httpMethods: ['GET'],
      websocket: true,
      // The dispatcher is the route's: the app closes it (gracefully) when it closes.
      undici: dispatcher as never,
      destroyAgent: false,
      proxyPayloads: false,
      internalRewriteLocationHeader: false,
      disableRequestLogging: true,
      config,
      preHandler,
      // http-proxy's runtime supports rewriteRequestHeaders here; its typings do not list it yet.
      wsClientOptions: {
        rewriteRequestHeaders: (headers: Record<string, string>, request: FastifyRequest) => {
          const [name, value] = broker.scheme.authorize((request.proxyState as ProxyState).token, { method: 'GET', url: upstream.origin + upstreamPath(upstream, request.url) })
          // Cookies go along as on plain requests (http-proxy's default); nothing else of the client's.
          const cookie = request.headers.cookie
          return cookie === undefined ? { ...headers, [name]: value } : { ...headers, cookie, [name]: value }
        }
      } as never,
      // A GET naming websocket without asking to upgrade its connection is a plain request.
      handler
    })
  })
}
