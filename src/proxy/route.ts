import httpProxy from '@fastify/http-proxy'
import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Agent, type Dispatcher } from 'undici'
import type { Metrics } from '../admin/metrics.js'
import type { TokenBroker } from '../auth/broker.js'
import type { TokenSet } from '../auth/token.js'
import type { RouteConfig } from '../config/schema.js'
import { keepSmallBodies, ReplayableBody } from './body.js'
import { sendError, upstreamFailure } from './error-reply.js'
import { grantOrigin } from './guards.js'
import { cleanRequestHeaders, cleanResponseHeaders } from './headers.js'
import { locationRewriter } from './location.js'

/** Per-request state of a proxied request. */
export interface ProxyState {
  /** The token this request was sent with: the one to drop on a `retryOn` answer. */
  token: TokenSet
  /** The upstream path (base path + rest), as http-proxy mapped it. */
  dest: string
  /** The body kept for a replay, released once the answer is sent. */
  body?: ReplayableBody
  replayed: boolean
}

declare module 'fastify' {
  interface FastifyRequest {
    proxyState: ProxyState | null
  }
}

const HTTP_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']

/** Upstream connections of one route: its own pool, certificates always verified. */
export function createRouteDispatcher (): Dispatcher {
  // reply-from would turn verification off for a pool it builds itself, so every route brings its own.
  return new Agent({ connect: { rejectUnauthorized: true }, keepAliveTimeout: 10_000 })
}

export interface RouteParts {
  route: RouteConfig
  broker: TokenBroker
  dispatcher: Dispatcher
  metrics: Metrics
}

/**
 * One config route: `prefix` → `upstream` through @fastify/http-proxy, with the
 * broker's token obtained in preHandler, set synchronously while the headers
 * are rewritten, and one replay after a `retryOn` answer when the body was kept.
 */
export function registerRoute (app: FastifyInstance, { route, broker, dispatcher, metrics }: RouteParts): void {
  const retryOn = new Set(route.retryOn)
  // A static key would come back the same: dropping it or replaying with it only repeats the refusal.
  const renewable = broker.scheme.endpoint !== undefined
  const rewriteLocation = locationRewriter(route.upstream, route.prefix)
  const upstreamUrl = new URL(route.upstream)

  app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', keepSmallBodies)
    scope.addHook('onResponse', (request, _reply, done) => {
      request.proxyState?.body?.release()
      done()
    })

    const replyOptions = {
      timeout: route.timeout,
      // reply-from would retry a GET answered 503 up to ten times on its own; the answer is passed on.
      retryDelay: () => null,
      queryString: rawQuery,
      rewriteRequestHeaders: (request: FastifyRequest, headers: IncomingHttpHeaders) => {
        const state = request.proxyState as ProxyState
        return cleanRequestHeaders(headers, broker.scheme.authorize(state.token, { method: request.method, url: upstreamUrl.origin + request.url }))
      },
      rewriteHeaders: (headers: IncomingHttpHeaders, request: FastifyRequest) => {
        const cleaned = cleanResponseHeaders(headers)
        if (typeof cleaned.location === 'string') cleaned.location = rewriteLocation(cleaned.location)
        // The guards let this Origin through; the proxy's CORS grant wins over the upstream's own.
        if (request.headers.origin !== undefined) grantOrigin(cleaned, request.headers.origin)
        return cleaned
      },
      onResponse: (request: FastifyRequest, reply: FastifyReply, res: { statusCode: number, headers: Record<string, unknown>, stream: NodeJS.ReadableStream & { resume: () => void } }) => {
        const state = request.proxyState as ProxyState
        // Replayed only with the whole body in hand: an upstream that answered before reading it
        // all may have made undici drop the rest, and half a body must never be sent.
        const body = request.body
        if (renewable && retryOn.has(res.statusCode) && !state.replayed && (body === undefined || (body instanceof ReplayableBody && body.complete))) {
          replay(request, reply, state, res)
          return
        }
        // Too big to replay, but the refused token is still dropped, so the next request gets a new one.
        if (renewable && retryOn.has(res.statusCode) && !state.replayed) broker.invalidate(state.token)
        sendAnswer(request, reply, res)
      },
      onError: (reply: FastifyReply, { error }: { error: FastifyError }) => {
        const failure = upstreamFailure(error, route.timeout)
        metrics.upstreamError(route.name, failure.code)
        sendError(reply.request, reply, failure)
      }
    }

    function forward (request: FastifyRequest, reply: FastifyReply): void {
      const state = request.proxyState as ProxyState
      if (request.body instanceof ReplayableBody) state.body = request.body
      reply.from(state.dest, replyOptions as never)
    }

    function replay (request: FastifyRequest, reply: FastifyReply, state: ProxyState, res: { headers: Record<string, unknown>, stream: { resume: () => void } }): void {
      state.replayed = true
      metrics.replay(route.name)
      res.stream.resume()
      // reply-from already copied the refused answer's headers; the replay's answer brings its own.
      for (const name of Object.keys(res.headers)) reply.removeHeader(name)
      broker.invalidate(state.token)
      // token() may throw at once (backing off): inside then() that becomes a rejection, not a crash.
      Promise.resolve().then(() => broker.token()).then((token) => {
        state.token = token
        // reply-from reads request.body: the replay sends the kept bytes as a fresh stream.
        if (state.body !== undefined) request.body = ReplayableBody.replay(state.body.kept())
        forward(request, reply)
      }, (err: FastifyError) => sendError(request, reply, err))
    }

    await scope.register(httpProxy, {
      upstream: route.upstream,
      prefix: route.prefix === '/' ? '' : route.prefix,
      undici: dispatcher as never,
      proxyPayloads: false,
      internalRewriteLocationHeader: false,
      disableRequestLogging: true,
      httpMethods: HTTP_METHODS,
      config: { bearerRoute: { name: route.name, prefix: route.prefix } },
      preHandler: (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
        let token: Promise<TokenSet> | TokenSet
        try {
          token = broker.token()
        } catch (err) {
          done(err as Error)
          return
        }
        if (token instanceof Promise) {
          token.then((t) => { request.proxyState = { token: t, dest: '', replayed: false }; done() }, done)
        } else {
          request.proxyState = { token, dest: '', replayed: false }
          done()
        }
      },
      replyOptions: replyOptions as never,
      // Websocket upgrades pass the same hooks (guards, token); the client's own headers stay behind,
      // the route's credential goes to the upstream. ws verifies upstream certificates by default.
      websocket: true,
      // http-proxy's runtime supports rewriteRequestHeaders here; its typings do not list it yet.
      wsClientOptions: {
        rewriteRequestHeaders: (headers: Record<string, string>, request: FastifyRequest) => {
          const [name, value] = broker.scheme.authorize((request.proxyState as ProxyState).token, { method: 'GET', url: upstreamUrl.origin + request.url })
          // Cookies go along as on plain requests (http-proxy's default); nothing else of the client's.
          const cookie = request.headers.cookie
          return cookie === undefined ? { ...headers, [name]: value } : { ...headers, cookie, [name]: value }
        }
      } as never,
      handler: (request: FastifyRequest, reply: FastifyReply, dest: string) => {
        // http-proxy has mapped the prefix to the upstream's base path and checked for traversal.
        // A bare prefix with a query ("/viv?a=1") maps to "?a=1": the upstream root, not "" (which reply-from reads as the local URL).
        (request.proxyState as ProxyState).dest = (dest.split('?', 1)[0] as string) || '/'
        forward(request, reply)
      }
    })
  })
}

/** Answers up to this size (by Content-Length) are read whole and sent in one write. */
const SMALL_ANSWER_BYTES = 64 * 1024

/**
 * Streams the upstream's answer to the client; a small one with a known length
 * is read whole first and sent with its headers in a single write, which saves
 * the stream plumbing (pipe, end-of-stream listeners, extra ticks) that
 * dominates the cost of small JSON answers.
 */
function sendAnswer (request: FastifyRequest, reply: FastifyReply, res: { statusCode: number, headers: Record<string, unknown>, stream: NodeJS.ReadableStream }): void {
  const length = Number(res.headers['content-length'])
  if (request.method === 'HEAD' || !(length > 0 && length <= SMALL_ANSWER_BYTES)) {
    reply.send(res.stream)
    return
  }
  const chunks: Buffer[] = []
  res.stream.on('data', (chunk: Buffer) => chunks.push(chunk))
  // The upstream broke off mid-answer: break off the client's answer too, as a streamed one would.
  res.stream.once('error', () => reply.raw.destroy())
  res.stream.once('end', () => reply.send(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)))
}

/** The query exactly as the client sent it: re-encoding could break signed URLs. */
function rawQuery (_search: string | undefined, url: string): string {
  const index = url.indexOf('?')
  return index === -1 ? '' : url.slice(index + 1)
}
