/**
 * Why an interactive login (authorization code, device code) ended without
 * tokens. Messages are for the person at the keyboard: they name what happened
 * and what to do, and never carry a code, verifier, device code or token.
 */
export type LoginFailure =
  /** The callback's `state` is not the one this login sent: a forged or stale redirect. */
  | 'state_mismatch'
  /** The callback's `iss` (RFC 9207) names another authorization server: a mix-up. */
  | 'issuer_mismatch'
  /** The person or the server refused (`access_denied`). */
  | 'denied'
  /** The authorization server answered another error to the authorization request. */
  | 'authorization_error'
  /** No callback came in time. */
  | 'timeout'
  /** The device code expired before the person approved it. */
  | 'expired'
  /** The caller cancelled (Ctrl-C). */
  | 'aborted'
  /** The loopback listener could not be opened. */
  | 'listen'
  /** An endpoint's answer lacks what the protocol requires. */
  | 'invalid_response'

export class LoginError extends Error {
  readonly reason: LoginFailure
  /** The OAuth `error` code the server sent, made printable. */
  readonly oauthError: string | undefined

  constructor (reason: LoginFailure, message: string, options: { oauthError?: string, cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'LoginError'
    this.reason = reason
    this.oauthError = options.oauthError
  }
}

/** Control characters and the bidi controls that reorder what a person reads. */
const UNPRINTABLE = /[\p{Cc}\u200E\u200F\u202A-\u202E\u2066-\u2069]+/gu
/** An error description longer than this is cut: it is one line on a terminal. */
const MAX_SHOWN = 200

/**
 * Text that came from elsewhere (a redirect's `error_description`, a device
 * authorization answer) made safe to print on a terminal: a line break could
 * forge another line and an escape sequence rewrite the screen or clipboard.
 */
export function printableText (text: string, limit = MAX_SHOWN): string {
  const clean = text.replace(UNPRINTABLE, ' ').replace(/ {2,}/g, ' ').trim()
  return clean.length > limit ? `${clean.slice(0, limit)}…` : clean
}
