import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { LoginRequired, TokenError } from '../auth/token-error.js'
import { LoginRequiredError, PROXY_ERROR_CODES, TokenRejectedError, TokenUnavailableError, UpstreamTimeoutError, UpstreamUnavailableError } from '../errors.js'
import { routeName } from './request-state.js'

export interface ErrorBody {
  error: { code: string, message: string, route?: string }
}

const UPSTREAM_TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'])

/** A token failure as the client sees it: 502 TOKEN_REJECTED, or 503 TOKEN_UNAVAILABLE with Retry-After. */
export function tokenFailure (err: TokenError): FastifyError & { retryAfter?: number } {
  if (err.kind === 'rejected') return new TokenRejectedError(err.message, { cause: err })
  const error: FastifyError & { retryAfter?: number } = new TokenUnavailableError(err.message, { cause: err })
  error.retryAfter = Math.max(1, Math.ceil((err.retryAfterMs ?? 1000) / 1000))
  return error
}

/** A failed exchange with the upstream (undici's error) as a SPEC code; the message names the cause, never a header value. */
export function upstreamFailure (err: Error & { code?: string }, timeoutMs: number): FastifyError {
  if (err.code !== undefined && UPSTREAM_TIMEOUT_CODES.has(err.code)) return new UpstreamTimeoutError(timeoutMs, { cause: err })
  return new UpstreamUnavailableError(err.code ?? err.name, { cause: err })
}

/**
 * Every error the proxy answers is JSON `{"error": {code, message, route?}}`.
 * Messages of unexpected 5xx errors are not leaked.
 */
export function sendError (request: FastifyRequest, reply: FastifyReply, error: FastifyError & { retryAfter?: number }): void {
  const failure: FastifyError & { retryAfter?: number } = error instanceof TokenError ? tokenFailure(error) : error instanceof LoginRequired ? new LoginRequiredError(error.message, { cause: error }) : error
  const status = failure.statusCode !== undefined && failure.statusCode >= 400 ? failure.statusCode : 500
  const known = PROXY_ERROR_CODES.has(failure.code)
  // Fastify's own 4xx messages are safe to show; unexpected 5xx ones are not.
  const code = known ? failure.code : status < 500 ? 'BAD_REQUEST' : 'INTERNAL_ERROR'
  const message = known || status < 500 ? failure.message : 'Internal proxy error'
  const route = routeName(request)
  const body: ErrorBody = { error: { code, message, ...(route === undefined ? {} : { route }) } }
  if (failure.retryAfter !== undefined) reply.header('retry-after', String(failure.retryAfter))
  if (status >= 500) request.log.warn({ route, code, reason: message }, 'request failed')
  reply.code(status).header('content-type', 'application/json; charset=utf-8').send(body)
}
