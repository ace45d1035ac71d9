/**
 * A failed token request. `rejected`: the endpoint refused the credentials
 * (permanent until the config changes). `unavailable`: it could not be asked or
 * did not answer usefully (transient: connection error, timeout, 5xx, 429,
 * unparsable body). Messages never carry a secret.
 */
export class TokenError extends Error {
  readonly kind: 'rejected' | 'unavailable'
  /** HTTP status of the token endpoint, when it answered. */
  readonly status: number | undefined
  /** The OAuth `error` code (RFC 6749 §5.2), when the endpoint sent one. */
  readonly oauthError: string | undefined
  /** How long the endpoint asked us to wait, ms (`Retry-After`). */
  readonly retryAfterMs: number | undefined

  constructor (kind: 'rejected' | 'unavailable', message: string, options: { status?: number, oauthError?: string, retryAfterMs?: number, cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'TokenError'
    this.kind = kind
    this.status = options.status
    this.oauthError = options.oauthError
    this.retryAfterMs = options.retryAfterMs
  }
}

/** OAuth error codes after which the refresh token itself is dead (RFC 6749 §5.2). */
export function isRefreshTokenDead (err: unknown): boolean {
  return err instanceof TokenError && err.kind === 'rejected'
}

/**
 * A user-login route (authorization_code, device_code) holds no usable
 * refresh token: only a person running `bearer-proxy login ROUTE` gives it
 * tokens again. No token request was made for it (SPEC "LOGIN_REQUIRED").
 */
export class LoginRequired extends Error {
  readonly route: string

  constructor (route: string, reason?: string) {
    super(`route "${route}" has no usable login${reason === undefined ? '' : ` (${reason})`}: run \`bearer-proxy login ${route}\``)
    this.name = 'LoginRequired'
    this.route = route
  }
}
