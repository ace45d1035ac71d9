import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import { Readable } from 'node:stream'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import type { Metrics } from '../telemetry/metrics.js'
import type { CredentialHeaders, RouteCredential } from '../auth/credential.js'
import type { OutgoingRequest } from '../auth/token-source.js'
import type { RouteConfig } from '../config/schema.js'
import { ReplayableBody, requestBody } from './body.js'
import { abandon, clientGone, watchClient } from './client-departure.js'
import { cookieScoper } from './cookies.js'
import { sendError } from './error-reply.js'
import { grantOrigin } from './guards.js'
import { cleanResponseHeaders, upstreamRequestHeaders } from './headers.js'
import { locationRewriter } from './location.js'
import { replay, shouldReplay } from './replay.js'
import type { ProxyState } from './request-state.js'
import { UpstreamExchange, type ExchangeRoute } from './upstream-exchange.js'
import { upstreamPath, upstreamTarget, type UpstreamTarget } from './upstream.js'

export interface ForwardingParts {
  route: RouteConfig
  credential: RouteCredential
  /** The route's pool of upstream connections. */
  dispatcher: Dispatcher
  metrics: Metrics
}

/**
 * The plain (not websocket) requests of one route. The credential headers are
 * obtained in the handler (a hook stage fewer per request than a preHandler)
 * with no await when a token is cached; the request goes to the route's undici
 * dispatcher, and after a `retryOn` answer it is sent once more with new
 * headers when its body was kept (proxy/replay.ts). It is also the exchange's
 * route: it decides what the client gets of each upstream answer.
 */
export class Forwarding implements ExchangeRoute<ProxyState> {
  readonly timeoutMs: number
  readonly #route: RouteConfig
  readonly #credential: RouteCredential
  readonly #dispatcher: Dispatcher
  readonly #metrics: Metrics
  readonly #upstream: UpstreamTarget
  readonly #rewriteLocation: (location: string) => string
  readonly #scopeCookies: ReturnType<typeof cookieScoper>

  constructor ({ route, credential, dispatcher, metrics }: ForwardingParts) {
    this.timeoutMs = route.timeout
    this.#route = route
    this.#credential = credential
    this.#dispatcher = dispatcher
    this.#metrics = metrics
    this.#upstream = upstreamTarget(route.upstream, route.prefix)
    this.#rewriteLocation = locationRewriter(route.upstream, route.prefix)
    this.#scopeCookies = cookieScoper(route.upstream, route.prefix)
  }

  /** The route's fastify handler. */
  readonly handle = (request: FastifyRequest, reply: FastifyReply): void => {
    const socket = request.raw.socket
    const metrics = this.#metrics
    request.body = requestBody(request)
    // The answer closes when its connection does, unless it is queued behind another on a
    // pipelined connection: then only the request closes. A request also closes, with its
    // client still there, once its body has been read: the socket decides.
    const onClose = (): void => {
      if (clientGone(reply, socket)) abandon(request, reply, socket, metrics)
    }
    reply.raw.once('close', onClose)
    request.raw.once('close', onClose)
    const target = upstreamPath(this.#upstream, request.url)
    let sent: CredentialHeaders | Promise<CredentialHeaders>
    try {
      sent = this.#credential.perRequest ? this.#credential.headersFor(this.#outgoing(request, target)) : this.#credential.headersFor()
    } catch (err) {
      // Token requests are backing off.
      sendError(request, reply, err as FastifyError)
      return
    }
    if (sent instanceof Promise) {
      sent.then((s) => this.#start(request, reply, socket, target, s), (err: FastifyError) => sendError(request, reply, err))
    } else {
      this.#start(request, reply, socket, target, sent)
    }
  }

  #outgoing (request: FastifyRequest, target: string): OutgoingRequest {
    return { method: request.method, url: this.#upstream.origin + target }
  }

  #start (request: FastifyRequest, reply: FastifyReply, socket: Socket, target: string, sent: CredentialHeaders): void {
    const state: ProxyState = { request, reply, socket, target, sent, replayed: false }
    if (request.body instanceof ReplayableBody) state.body = request.body
    request.proxyState = state
    if (request.body !== undefined) watchClient(state, this.timeoutMs, this.#metrics)
    this.#forward(state)
  }

  #forward (state: ProxyState): void {
    // The client left while the credential (or a replay's new one) was on its way.
    if (clientGone(state.reply, state.socket)) return
    const request = state.request
    const upstream = this.#upstream
    this.#dispatcher.dispatch({
      origin: upstream.origin,
      path: state.target,
      method: request.method as Dispatcher.HttpMethod,
      headers: upstreamRequestHeaders(request.headers, upstream.host, state.sent.headers, this.#route.forwardCookies),
      body: request.body instanceof Readable ? request.body : null,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs
    }, state.exchange = new UpstreamExchange(this, state))
  }

  readonly #send = (state: ProxyState): void => this.#forward(state)
  readonly #fail = (state: ProxyState, err: FastifyError): void => sendError(state.request, state.reply, err)

  /**
   * What the client gets of an upstream answer: hop-by-hop headers dropped,
   * Location pointed back at the proxy and the CORS grant for an allowed
   * Origin. A `retryOn` answer to a request that can be sent again is dropped
   * and the request replayed with new credential headers.
   */
  head (state: ProxyState, statusCode: number, upstreamHeaders: IncomingHttpHeaders): OutgoingHttpHeaders | undefined {
    const request = state.request
    if (shouldReplay(state, this.#credential, statusCode, upstreamHeaders)) {
      this.#metrics.replay(this.#route.name)
      replay(state, this.#credential, this.#outgoing(request, state.target), this.#send, this.#fail)
      return undefined
    }
    // This answer goes to the client: the body kept for a replay is let go.
    state.body?.release()
    const headers = cleanResponseHeaders(upstreamHeaders)
    if (typeof headers.location === 'string') headers.location = this.#rewriteLocation(headers.location)
    // Node's typings say string[]; undici gives a single line as a string.
    const cookies: string | string[] | undefined = headers['set-cookie']
    if (cookies !== undefined) headers['set-cookie'] = this.#scopeCookies(cookies)
    // The guards let this Origin through; the proxy's CORS grant wins over the upstream's own.
    if (request.headers.origin !== undefined) grantOrigin(headers, request.headers.origin)
    // The upstream answered before reading the whole upload: this connection cannot carry another request.
    if (!request.raw.complete) headers.connection = 'close'
    return headers
  }

  /** The answer streams: a client that stops reading it is cut off after the route's timeout. */
  streaming (state: ProxyState): void {
    watchClient(state, this.timeoutMs, this.#metrics)
  }

  failed (state: ProxyState, failure: FastifyError): void {
    this.#metrics.upstreamError(this.#route.name, failure.code)
    sendError(state.request, state.reply, failure)
  }
}
