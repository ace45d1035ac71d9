import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { CredentialHeaders } from '../auth/credential.js'
import type { ReplayableBody } from './body.js'

/** Per-request state of a proxied request, from the moment its credential is in hand. */
export interface ProxyState {
  readonly request: FastifyRequest
  readonly reply: FastifyReply
  /** The client's connection, held: Node detaches it from the request once the body is read. */
  readonly socket: Socket
  /** The upstream path and query. */
  readonly target: string
  /** The credential headers the request was last sent with: the ones a `retryOn` answer refuses. */
  sent: CredentialHeaders
  /** The body kept for a replay, let go once an answer goes to the client. */
  body?: ReplayableBody
  replayed: boolean
  /** Whether the exchange watch has it (uploads, and answers that stream). */
  watched?: boolean
  /** The request in flight to the upstream. */
  exchange?: { abandon (): void }
}

/** What a proxy route puts in its fastify route config. */
export interface RouteTag {
  name: string
  prefix: string
}

/** Set once the app, closing past its shutdown grace, cuts the requests it still has in flight. */
export interface ShutdownCut {
  active: boolean
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set once the request's credential is in hand; null before (and for requests no route takes). */
    proxyState: ProxyState | null
    /** The route tag, looked up once per request (null: not yet); fastify builds `routeOptions` anew on every read. */
    bearerRoute: RouteTag | undefined | null
    /** Whether the request's log line and metrics are written. */
    requestLogged: boolean
  }
  interface FastifyInstance {
    shutdownCut: ShutdownCut
  }
}

/** Gives every request of `app` the proxy's state fields; returns the app's shutdown switch. */
export function attachRequestState (app: FastifyInstance): ShutdownCut {
  app.decorateRequest('proxyState', null)
  app.decorateRequest('bearerRoute', null)
  app.decorateRequest('requestLogged', false)
  const shutdownCut: ShutdownCut = { active: false }
  app.decorate('shutdownCut', shutdownCut)
  return shutdownCut
}

export function routeOf (request: FastifyRequest): RouteTag | undefined {
  if (request.bearerRoute === null) request.bearerRoute = (request.routeOptions.config as { bearerRoute?: RouteTag } | undefined)?.bearerRoute
  return request.bearerRoute
}

export function routeName (request: FastifyRequest): string | undefined {
  return routeOf(request)?.name
}

/**
 * Whether a request ending now, unanswered, was cut by the app's shutdown:
 * then its connection and its upstream request were ended by the proxy
 * itself, and neither its client nor its upstream is to blame.
 */
export function cutByShutdown (request: FastifyRequest): boolean {
  return request.server.shutdownCut.active
}
