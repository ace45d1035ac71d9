import createError, { type FastifyErrorConstructor } from '@fastify/error'

const proxyErrorCodes = new Set<string>()

/**
 * An error the proxy answers with: made by `@fastify/error` and its code
 * listed in PROXY_ERROR_CODES, so that list can never miss one.
 */
function proxyError<C extends string, SC extends number> (code: C, message: string, statusCode: SC): FastifyErrorConstructor<{ code: C, statusCode: SC }> {
  proxyErrorCodes.add(code)
  return createError(code, message, statusCode)
}

/**
 * Every error the proxy answers with. Codes and statuses are the user contract
 * (SPEC.md "HTTP behaviour"); the JSON body is built in `proxy/error-reply.ts`.
 */
export const RouteNotFoundError = proxyError('ROUTE_NOT_FOUND', 'No route matches %s; routes: %s', 404)
export const HostNotAllowedError = proxyError('HOST_NOT_ALLOWED', 'Host %s is not allowed', 403)
export const OriginNotAllowedError = proxyError('ORIGIN_NOT_ALLOWED', 'Origin %s is not allowed', 403)
export const ClientKeyInvalidError = proxyError('CLIENT_KEY_INVALID', 'Missing or wrong x-proxy-key header', 401)
export const LoginRequiredError = proxyError('LOGIN_REQUIRED', 'Login required: %s', 401)
export const TokenRejectedError = proxyError('TOKEN_REJECTED', 'Token endpoint refused the credentials: %s', 502)
export const TokenUnavailableError = proxyError('TOKEN_UNAVAILABLE', 'No token available: %s', 503)
export const UpstreamUnavailableError = proxyError('UPSTREAM_UNAVAILABLE', 'Upstream connection failed: %s', 502)
export const UpstreamTimeoutError = proxyError('UPSTREAM_TIMEOUT', 'Upstream did not answer within %d ms', 504)
export const BadRequestError = proxyError('BAD_REQUEST', '%s', 400)
export const UriTooLongError = proxyError('URI_TOO_LONG', 'Request target longer than %d bytes', 414)
export const RequestTimeoutError = proxyError('REQUEST_TIMEOUT', 'The request body stopped arriving for %d ms', 408)

/** The codes of the errors above: the only ones the proxy answers with, besides 400 BAD_REQUEST and 500 INTERNAL_ERROR. */
export const PROXY_ERROR_CODES: ReadonlySet<string> = proxyErrorCodes
