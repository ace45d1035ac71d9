import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Metrics } from '../telemetry/metrics.js'
import { cutByShutdown, routeName } from './request-state.js'
import { pathOf } from './upstream.js'

/** The status logged for a request whose client got no answer at all before the exchange was cut (nginx's "client closed request"). */
export const NO_ANSWER_STATUS = 499
/** The status logged for a request the proxy's shutdown cut before any answer: the service went away, not the client. */
export const SHUTDOWN_CUT_STATUS = 503

/**
 * The one log line and the metrics of a request, written once: when its
 * answer has gone out (fastify's onResponse), or when the exchange was cut
 * (the client went away, the upstream broke off mid-answer, a stalled client
 * was disconnected, the shutdown cut it), which fastify never reports. A
 * cut request is logged with `aborted: true` and the status it was sent, or
 * 499 when none was; one the shutdown cut is marked `cut: "shutdown"`, with
 * 503 when it was sent no status.
 */
export function requestEnded (request: FastifyRequest, reply: FastifyReply, metrics: Metrics): void {
  if (request.requestLogged) return
  request.requestLogged = true
  const res = reply.raw
  const finished = res.writableFinished
  // An answer queued behind another on a pipelined connection has no socket: its head never left.
  const cut = !finished && cutByShutdown(request)
  const status = finished || (res.headersSent && res.socket !== null) ? res.statusCode : cut ? SHUTDOWN_CUT_STATUS : NO_ANSWER_STATUS
  const route = routeName(request)
  const line = { route, method: request.method, path: pathOf(request.url), status, ms: Math.round(reply.elapsedTime * 10) / 10 }
  if (finished) request.log.info(line, 'request')
  else if (cut) request.log.info({ ...line, aborted: true, cut: 'shutdown' }, 'request')
  else request.log.info({ ...line, aborted: true }, 'request')
  metrics.request(route, request.method, status, reply.elapsedTime / 1000)
}
