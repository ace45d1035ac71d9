import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import { Readable } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Agent, type Dispatcher } from 'undici'
import type { Metrics } from '../telemetry/metrics.js'
import type { TokenBroker } from '../auth/broker.js'
import type { TokenSet } from '../auth/token.js'
import { formatToken, type TokenFormat } from '../auth/token-source.js'
import type { RouteConfig } from '../config/schema.js'
import { RequestTimeoutError } from '../errors.js'
import { ReplayableBody, requestBody } from './body.js'
import { cookieScoper } from './cookies.js'
import { sendError } from './error-reply.js'
import { grantOrigin } from './guards.js'
import { cleanResponseHeaders, upstreamRequestHeaders } from './headers.js'
import { locationRewriter } from './location.js'
import { upstreamPath, upstreamTarget } from './upstream.js'
import { watchExchange } from './exchange-watch.js'
import { requestEnded } from './request-log.js'
import { UpstreamExchange, type ExchangeRoute } from './upstream-exchange.js'
import { websocketHandler, type WebsocketUpgrades } from './websocket.js'
import { withToken } from './with-token.js'

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
  /** The request in flight to the upstream. */
  exchange?: UpstreamExchange
  /** The client's connection, held: Node detaches it from the request once the body is read. */
  socket: Socket
}

declare module 'fastify' {
  interface FastifyRequest {
    proxyState: ProxyState | null
  }
}

const HTTP_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']

/** Whether the client's connection is gone with its answer unfinished. */
function clientGone (reply: FastifyReply, socket: Socket): boolean {
  return !reply.raw.writableFinished && (reply.raw.destroyed || socket.destroyed)
}

/** Upstream connections of one route: its own pool, certificates always verified. */
export function createRouteDispatcher (): Dispatcher {
  return new Agent({ connect: { rejectUnauthorized: true }, keepAliveTimeout: 10_000 })
}

export interface RouteParts {
  route: RouteConfig
  broker: TokenBroker
  format: TokenFormat
  dispatcher: Dispatcher
  metrics: Metrics
  upgrades: WebsocketUpgrades
}

/**
 * One config route: `prefix` → `upstream`. The broker's token is obtained in
 * the handler and set while the request headers are built; the request goes to
 * the route's undici dispatcher, and after a `retryOn` answer it is sent once
 * more with a fresh token when its body was kept. Websocket upgrades pass the
 * same hooks and go to proxy/websocket.ts.
 */
export function registerRoute (app: FastifyInstance, { route, broker, format, dispatcher, metrics, upgrades }: RouteParts): void {
  const retryOn = new Set(route.retryOn)
  // A static key would come back the same: dropping it or replaying with it only repeats the refusal.
  const renewable = broker.scheme.endpoint !== undefined
  const rewriteLocation = locationRewriter(route.upstream, route.prefix)
  const scopeCookies = cookieScoper(route.upstream, route.prefix)
  const upstream = upstreamTarget(route.upstream, route.prefix)
  const localPrefix = route.prefix === '/' ? '' : route.prefix
  const config = { bearerRoute: { name: route.name, prefix: route.prefix } }

  /** Plain requests: the token is fetched here rather than in a preHandler, a hook stage fewer per request. */
  function handler (request: FastifyRequest, reply: FastifyReply): void {
    const socket = request.raw.socket
    request.body = requestBody(request)
    // The answer closes when its connection does, unless it is queued behind another on a
    // pipelined connection: then only the request closes. A request also closes, with its
    // client still there, once its body has been read: the socket decides.
    const onClose = (): void => {
      if (clientGone(reply, socket)) abandon(request, reply, socket)
    }
    reply.raw.once('close', onClose)
    request.raw.once('close', onClose)
    withToken(broker, (token) => {
      const state: ProxyState = { token, target: upstreamPath(upstream, request.url), replayed: false, socket }
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
    watchExchange(request.raw, reply.raw, route.timeout, () => stalled(request, reply, state.socket))
  }

  /**
   * Ends an exchange the client stopped moving, or whose connection is gone: 408 when
   * no answer has started, else the connection is cut.
   */
  function stalled (request: FastifyRequest, reply: FastifyReply, socket: Socket): void {
    if (reply.raw.headersSent || socket.destroyed) {
      abandon(request, reply, socket)
      return
    }
    reply.raw.once('finish', () => abandon(request, reply, socket))
    reply.header('connection', 'close')
    sendError(request, reply, new RequestTimeoutError(route.timeout))
  }

  /**
   * The client is gone or cut off: the upstream request is ended with the body it reads, the
   * connection closed, and the request logged (fastify only logs answers that finish).
   */
  function abandon (request: FastifyRequest, reply: FastifyReply, socket: Socket): void {
    request.proxyState?.exchange?.abandon()
    if (request.body instanceof Readable) request.body.destroy()
    socket.destroy()
    requestEnded(request, reply, metrics)
  }

  function forward (request: FastifyRequest, reply: FastifyReply, state: ProxyState): void {
    // The client left while the token (or a replay's new one) was on its way.
    if (clientGone(reply, state.socket)) return
    const credential = formatToken(format, state.token)
    dispatcher.dispatch({
      origin: upstream.origin,
      path: state.target,
      method: request.method as Dispatcher.HttpMethod,
      headers: upstreamRequestHeaders(request.headers, upstream.host, credential, route.forwardCookies),
      body: request.body instanceof Readable ? request.body : null,
      headersTimeout: route.timeout,
      bodyTimeout: route.timeout
    }, state.exchange = new UpstreamExchange(exchangeRoute, request, reply, state))
  }

  /**
   * What the client gets of an upstream answer: hop-by-hop headers dropped,
   * Location pointed back at the proxy and the CORS grant for an allowed
   * Origin. A `retryOn` answer to a request that can be sent again is dropped
   * and the request replayed with a fresh token.
   */
  function answerHead ({ request, reply, state }: UpstreamExchange, statusCode: number, upstreamHeaders: IncomingHttpHeaders): OutgoingHttpHeaders | undefined {
    // The broker drops the refused token (so a body too big to replay still leaves a new one for
    // the next request), unless refusals have renewed it enough this minute: an upstream that
    // refuses this request whatever the token then gets its answer passed on.
    if (renewable && retryOn.has(statusCode) && !state.replayed && broker.invalidate(state.token)) {
      // Replayed only with the whole body in hand: an upstream that answered before reading it
      // all may have made undici drop the rest, and half a body must never be sent.
      const body = request.body
      if (body === undefined || (body instanceof ReplayableBody && body.complete)) {
        replay(request, reply, state)
        return undefined
      }
    }
    const headers = cleanResponseHeaders(upstreamHeaders)
    if (typeof headers.location === 'string') headers.location = rewriteLocation(headers.location)
    // Node's typings say string[]; undici gives a single line as a string.
    const cookies: string | string[] | undefined = headers['set-cookie']
    if (cookies !== undefined) headers['set-cookie'] = scopeCookies(cookies)
    // The guards let this Origin through; the proxy's CORS grant wins over the upstream's own.
    if (request.headers.origin !== undefined) grantOrigin(headers, request.headers.origin)
    // The upstream answered before reading the whole upload: this connection cannot carry another request.
    if (!request.raw.complete) headers.connection = 'close'
    return headers
  }

  const exchangeRoute: ExchangeRoute = {
    timeoutMs: route.timeout,
    head: answerHead,
    streaming: ({ request, reply, state }) => watch(request, reply, state),
    failed: ({ request, reply }, failure) => {
      metrics.upstreamError(route.name, failure.code)
      sendError(request, reply, failure)
    }
  }

  function replay (request: FastifyRequest, reply: FastifyReply, state: ProxyState): void {
    state.replayed = true
    metrics.replay(route.name)
    // token() may throw at once (backing off): inside then() that becomes a rejection, not a crash.
    Promise.resolve().then(() => broker.token()).then((token) => {
      state.token = token
      if (state.body !== undefined) request.body = ReplayableBody.replay(state.body.kept())
      forward(request, reply, state)
    }, (err: FastifyError) => sendError(request, reply, err))
  }

  app.register(async (scope) => {
    scope.route({ url: localPrefix === '' ? '/' : localPrefix, method: HTTP_METHODS, config, handler })
    scope.route({ url: `${localPrefix}/*`, method: HTTP_METHODS, config, handler })

    // Websocket upgrades pass the same hooks (guards); a GET naming websocket without asking to
    // upgrade its connection is a plain request.
    const upgrade = websocketHandler({ route, broker, format, metrics, upgrades }, handler)
    scope.route({ url: localPrefix === '' ? '/' : localPrefix, method: 'GET', constraints: { upgrade: 'websocket' }, config, handler: upgrade })
    scope.route({ url: `${localPrefix}/*`, method: 'GET', constraints: { upgrade: 'websocket' }, config, handler: upgrade })
  })
}
