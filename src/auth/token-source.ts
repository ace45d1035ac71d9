import type { DevicePrompt } from './device-code-login.js'
import type { Redactor } from './redaction.js'
import type { RevocationResult } from './revocation.js'
import type { TokenResponse, TokenSet } from './token.js'

/** The request a credential is being attached to (DPoP-style credentials sign it). */
export interface OutgoingRequest {
  method: string
  url: string
}

/**
 * Where a route's token comes from (SPEC "auth types"): a source only knows
 * how to ask for a token; caching, single flight, refresh-ahead and backoff
 * live in the broker (golang.org/x/oauth2's TokenSource, wrapped by
 * ReuseTokenSource).
 */
export interface TokenSource {
  readonly type: string
  /**
   * The token endpoint URL when the source makes requests: the key of the
   * request budget shared by every route that uses it. Undefined for a fixed
   * credential, which is never renewed, persisted or dropped.
   */
  readonly endpoint: string | undefined
  /**
   * The route's secrets in every encoding a token endpoint may echo them,
   * built once when the source is made; stripped from any message built from
   * an answer.
   */
  readonly secrets: Redactor
  /** Obtain a new token with the source's own credentials. */
  obtain (signal: AbortSignal): Promise<TokenResponse>
  /** Renew with a refresh token (RFC 6749 §6), when the source can. */
  refresh?: (refreshToken: string, signal: AbortSignal) => Promise<TokenResponse>
  /**
   * A user-login source (authorization_code, device_code): its tokens come
   * only from a person's login (`bearer-proxy login`), then its refresh
   * tokens; `obtain` never succeeds and is never called for it.
   */
  login?: (prompt: LoginPrompt, signal: AbortSignal) => Promise<TokenResponse>
  /**
   * Revokes a refresh token (RFC 7009) for `logout`; resolves undefined when
   * the route knows no revocation endpoint. Never throws for the server's sake.
   */
  revoke?: (refreshToken: string, signal: AbortSignal) => Promise<RevocationResult | undefined>
}

/** How a login reaches the person at the keyboard. */
export interface LoginPrompt {
  /** authorization_code: the authorization URL to open in their browser. */
  openUrl (url: string): void | Promise<void>
  /** device_code: where to go and the code to enter there. */
  showCode (prompt: DevicePrompt): void | Promise<void>
}

/** How a token is put on a request: one header, its value a prefix and the token. */
export interface TokenFormat {
  /** Lower-case header name. */
  readonly header: string
  /** `Bearer ` (with its space), or '' to send the raw value. */
  readonly prefix: string
}

/** `Authorization: Bearer <token>` (RFC 6750 §2.1), what every OAuth grant's token is sent as. */
export const BEARER: TokenFormat = { header: 'authorization', prefix: 'Bearer ' }

/** A format from a configured header and scheme word (`""` sends the raw value). */
export function tokenFormat (header: string, scheme: string): TokenFormat {
  return { header, prefix: scheme === '' ? '' : `${scheme} ` }
}

/** The header of `token` in `format`: [lower-case name, value]. */
export function formatToken (format: TokenFormat, token: TokenSet): [string, string] {
  return [format.header, format.prefix + token.accessToken]
}
