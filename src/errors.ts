import createError from '@fastify/error'

/**
 * Every error the proxy answers with. Codes and statuses are the user contract
 * (SPEC.md "HTTP behaviour"); the JSON body is built in `proxy/error-reply.ts`.
 */
export const RouteNotFoundError = createError('ROUTE_NOT_FOUND', 'No route matches %s; routes: %s', 404)
export const HostNotAllowedError = createError('HOST_NOT_ALLOWED', 'Host %s is not allowed', 403)
export const OriginNotAllowedError = createError('ORIGIN_NOT_ALLOWED', 'Origin %s is not allowed', 403)
export const ClientKeyInvalidError = createError('CLIENT_KEY_INVALID', 'Missing or wrong x-proxy-key header', 401)
export const TokenRejectedError = createError('TOKEN_REJECTED', 'Token endpoint refused the credentials: %s', 502)
export const TokenUnavailableError = createError('TOKEN_UNAVAILABLE', 'No token available: %s', 503)
export const UpstreamUnavailableError = createError('UPSTREAM_UNAVAILABLE', 'Upstream connection failed: %s', 502)
export const UpstreamTimeoutError = createError('UPSTREAM_TIMEOUT', 'Upstream did not answer within %d ms', 504)
export const BadRequestError = createError('BAD_REQUEST', '%s', 400)
export const UriTooLongError = createError('URI_TOO_LONG', 'Request target longer than %d bytes', 414)
export const RequestTimeoutError = createError('REQUEST_TIMEOUT', 'The request body stopped arriving for %d ms', 408)

/** The codes of the errors above: the only ones the proxy answers with, besides 400 BAD_REQUEST and 500 INTERNAL_ERROR. */
export const PROXY_ERROR_CODES: ReadonlySet<string> = new Set([
  'ROUTE_NOT_FOUND', 'HOST_NOT_ALLOWED', 'ORIGIN_NOT_ALLOWED', 'CLIENT_KEY_INVALID', 'TOKEN_REJECTED',
  'TOKEN_UNAVAILABLE', 'UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'BAD_REQUEST', 'URI_TOO_LONG', 'REQUEST_TIMEOUT'
])

/** Configuration mistakes: one line each, naming the key path (exit code 2). */
export class ConfigError extends Error {
  readonly issues: string[]
  constructor (issues: string[]) {
    super(issues.join('\n'))
    this.name = 'ConfigError'
    this.issues = issues
  }
}
