import { decodeJwt } from 'jose'
import { TokenError } from './token-error.js'

/** What a scheme gets back from its token endpoint, before the broker dates it. */
export interface TokenResponse {
  accessToken: string
  /** Seconds; `Infinity` for credentials that never expire (static keys). */
  expiresIn?: number
  refreshToken?: string
  refreshExpiresIn?: number
  /** `token_type` as answered (RFC 6749 §5.1; `DPoP` for a DPoP-bound token, RFC 9449 §5). */
  tokenType?: string
}

/** A dated token as the broker caches, persists and serves it. */
export interface TokenSet {
  accessToken: string
  /** Epoch ms when it was obtained. */
  obtainedAt: number
  /** Epoch ms when it expires; `Infinity` when it never does. */
  expiresAt: number
  refreshToken?: string
  /** Epoch ms; absent when the server did not say. */
  refreshExpiresAt?: number
}

/** A lifetime longer than a year is a server bug, not a promise. */
export const MAX_LIFETIME_SECONDS = 365 * 24 * 3600

/**
 * `expires_in` as servers really send it: numbers or numeric strings. Zero,
 * negative, absent and non-numeric values say nothing (undefined); absurd ones
 * are capped.
 */
export function parseSeconds (value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN
  if (!Number.isFinite(n) || n <= 0) return undefined
  return Math.min(n, MAX_LIFETIME_SECONDS)
}

/**
 * What node:http refuses in a header value (its `checkInvalidHeaderChar`): CR, LF and other
 * control characters but tab, and anything past Latin-1. Here, so that `token` need not load node:http.
 */
const NOT_SENDABLE_IN_HEADER = /[^\t\x20-\x7e\x80-\xff]/

/** Whether Node would send `value` as a header value: no CR, LF or other control characters, nothing past Latin-1. */
export function sendableInHeader (value: string): boolean {
  return !NOT_SENDABLE_IN_HEADER.test(value)
}

/**
 * Expiry from `expires_in`, else the JWT `exp` claim, else the default TTL (SPEC "Token lifecycle").
 * Every scheme's answer passes here, so a token that cannot be sent in a header is refused here,
 * as if the token endpoint had refused the credentials: it is never cached or stored, and could
 * otherwise split the upstream request's headers.
 */
export function datedToken (response: TokenResponse, now: number, defaultTtlSeconds: number, previousRefresh?: Pick<TokenSet, 'refreshToken' | 'refreshExpiresAt'>): TokenSet {
  if (!sendableInHeader(response.accessToken)) {
    throw new TokenError('rejected', 'the access token it answered cannot be sent in an HTTP header (control characters or line breaks)')
  }
  const lifetime = response.expiresIn ?? jwtLifetime(response.accessToken, now) ?? defaultTtlSeconds
  const token: TokenSet = {
    accessToken: response.accessToken,
    obtainedAt: now,
    expiresAt: lifetime === Infinity ? Infinity : now + lifetime * 1000
  }
  if (response.refreshToken !== undefined) {
    token.refreshToken = response.refreshToken
    if (response.refreshExpiresIn !== undefined) token.refreshExpiresAt = now + response.refreshExpiresIn * 1000
  } else if (previousRefresh?.refreshToken !== undefined) {
    // RFC 6749 §6: a refresh answer without a new refresh token leaves the old one valid.
    token.refreshToken = previousRefresh.refreshToken
    if (previousRefresh.refreshExpiresAt !== undefined) token.refreshExpiresAt = previousRefresh.refreshExpiresAt
  }
  return token
}

function jwtLifetime (accessToken: string, now: number): number | undefined {
  if (accessToken.split('.').length !== 3) return undefined
  try {
    const { exp } = decodeJwt(accessToken)
    if (typeof exp !== 'number') return undefined
    // An already expired JWT gets lifetime 0, not the default TTL.
    return Math.min(Math.max(exp - now / 1000, 0), MAX_LIFETIME_SECONDS)
  } catch {
    return undefined
  }
}
