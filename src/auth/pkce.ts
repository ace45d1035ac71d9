import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * PKCE (RFC 7636) and the `state` value of an authorization request.
 *
 * 32 random bytes give a 43-character base64url verifier: the shortest RFC 7636
 * §4.1 allows and 256 bits of entropy, as its §7.1 recommends. base64url only
 * uses unreserved characters (`A-Z a-z 0-9 - _`).
 */
const RANDOM_BYTES = 32

const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/

/** A fresh code verifier (RFC 7636 §4.1), from the operating system's random source. */
export function codeVerifier (): string {
  return randomBytes(RANDOM_BYTES).toString('base64url')
}

/** Whether `value` is a verifier RFC 7636 §4.1 allows: 43 to 128 unreserved characters. */
export function isCodeVerifier (value: string): boolean {
  return VERIFIER.test(value)
}

/**
 * The S256 challenge (RFC 7636 §4.2): BASE64URL(SHA256(ASCII(verifier))). Only
 * S256 is ever sent: `plain` would put the verifier itself in the browser's
 * history and the authorization server's logs.
 */
export function codeChallenge (verifier: string): string {
  if (!isCodeVerifier(verifier)) throw new TypeError('a PKCE code verifier is 43 to 128 unreserved characters')
  return createHash('sha256').update(verifier, 'ascii').digest('base64url')
}

/**
 * A fresh `state` (RFC 6749 §10.12): unguessable, so a callback this login did
 * not start (a forged redirect carrying someone else's code) is told apart.
 */
export function newState (): string {
  return randomBytes(RANDOM_BYTES).toString('base64url')
}

/** Compares a received `state` with the one sent, in time independent of where they differ. */
export function sameState (received: string | null | undefined, sent: string): boolean {
  if (typeof received !== 'string') return false
  const a = Buffer.from(received, 'utf8')
  const b = Buffer.from(sent, 'utf8')
  return a.length === b.length && timingSafeEqual(a, b)
}
