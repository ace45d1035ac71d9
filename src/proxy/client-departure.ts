import type { Socket } from 'node:net'
import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Metrics } from '../telemetry/metrics.js'
import { RequestTimeoutError } from '../errors.js'
import { sendError } from './error-reply.js'
import { watchExchange } from './exchange-watch.js'
import { requestEnded } from './request-log.js'
import type { ProxyState } from './request-state.js'

/** Whether the client's connection is gone with its answer unfinished. */
export function clientGone (reply: FastifyReply, socket: Socket): boolean {
  return !reply.raw.writableFinished && (reply.raw.destroyed || socket.destroyed)
}

/**
 * The client is gone or cut off: the upstream request is ended with the body it reads, the
 * connection closed, and the request logged (fastify only logs answers that finish).
 */
export function abandon (request: FastifyRequest, reply: FastifyReply, socket: Socket, metrics: Metrics): void {
  request.proxyState?.exchange?.abandon()
  if (request.body instanceof Readable) request.body.destroy()
  socket.destroy()
  requestEnded(request, reply, metrics)
}

/**
 * A client that stops sending its body, or stops reading a streamed answer, for the route's
 * timeout ends the exchange: 408 when no answer has started, else the connection is cut. Small
 * answers go out in one write that the socket buffer takes whole, so they are not watched: a
 * registration per small GET kept every finished request alive until the next check.
 */
export function watchClient (state: ProxyState, timeoutMs: number, metrics: Metrics): void {
  if (state.watched === true) return
  state.watched = true
  watchExchange(state.request.raw, state.reply.raw, timeoutMs, () => stalled(state, timeoutMs, metrics))
}

/**
 * Ends an exchange the client stopped moving, or whose connection is gone: 408 when
 * no answer has started, else the connection is cut.
 */
function stalled ({ request, reply, socket }: ProxyState, timeoutMs: number, metrics: Metrics): void {
  if (reply.raw.headersSent || socket.destroyed) {
    abandon(request, reply, socket, metrics)
    return
  }
  reply.raw.once('finish', () => abandon(request, reply, socket, metrics))
  reply.header('connection', 'close')
  sendError(request, reply, new RequestTimeoutError(timeoutMs))
}
