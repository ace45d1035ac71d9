import type { TokenSet } from './token.js'
import type { TokenSettings } from './token-settings.js'

/** What the renewal policy reads of the token settings. */
export type Margins = Pick<TokenSettings, 'refreshAhead' | 'minValidity'>

/**
 * Until when a token may be sent (SPEC "Token lifecycle"): `minValidity`
 * seconds before it expires, never later. The margin covers clock skew and the
 * time the token endpoint took to answer (the expiry is counted from when the
 * answer arrived), so it is never shrunk, however short the token lives.
 */
export function usableUntil (token: Pick<TokenSet, 'expiresAt'>, margins: Margins): number {
  return token.expiresAt - margins.minValidity * 1000
}

/**
 * When renewal starts: after `refreshAhead` of the token's lifetime. Where that
 * point falls after the token stops being usable (a token that lives not much
 * longer than `minValidity`), after `refreshAhead` of its usable part instead,
 * so the renewal is done before requests would have to wait for it. A token
 * that is never usable (it lives shorter than `minValidity`) is due at once;
 * the minimum interval between token requests paces those.
 */
export function renewAt (token: Pick<TokenSet, 'obtainedAt' | 'expiresAt'>, margins: Margins): number {
  const ahead = token.obtainedAt + (token.expiresAt - token.obtainedAt) * margins.refreshAhead
  const until = usableUntil(token, margins)
  if (ahead <= until) return ahead
  return token.obtainedAt + Math.max(0, until - token.obtainedAt) * margins.refreshAhead
}

/** A token that lives no longer than the margin: by the margins it is never usable. */
export function neverUsable (token: Pick<TokenSet, 'obtainedAt' | 'expiresAt'>, margins: Margins): boolean {
  return usableUntil(token, margins) <= token.obtainedAt
}
