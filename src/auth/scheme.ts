import type { Redactor } from './redaction.js'
import type { TokenResponse, TokenSet } from './token.js'

/** The request a credential is being attached to (DPoP-style schemes sign it). */
export interface OutgoingRequest {
  method: string
  url: string
}

/**
 * One auth scheme (SPEC "auth types"). A scheme only knows how to ask for a
 * token; caching, single flight, refresh-ahead and backoff live in the broker
 * (golang.org/x/oauth2's TokenSource, wrapped by ReuseTokenSource).
 */
export interface AuthScheme {
  readonly type: string
  /** Token endpoint URL, shared budget key; undefined when no request is made. */
  readonly endpoint: string | undefined
  /**
   * The route's secrets in every encoding a token endpoint may echo them,
   * built once when the scheme is made; stripped from any message built from
   * an answer.
   */
  readonly secrets: Redactor
  /** Obtain a new token with the scheme's own credentials. */
  obtain (signal: AbortSignal): Promise<TokenResponse>
  /** Renew with a refresh token (RFC 6749 §6), when the scheme can. */
  refresh?: (refreshToken: string, signal: AbortSignal) => Promise<TokenResponse>
  /** The header carrying the credential for this request: [lower-case name, value]. */
  authorize (token: TokenSet, request: OutgoingRequest): [string, string]
}

/** `Authorization: Bearer <token>` (RFC 6750 §2.1), the header every OAuth scheme sends. */
export function bearer (token: TokenSet): [string, string] {
  return ['authorization', `Bearer ${token.accessToken}`]
}
