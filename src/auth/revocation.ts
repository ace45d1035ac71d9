import { Redactor } from './redaction.js'
import type { ClientAuth, TokenRequestParts } from './client-auth.js'
import { cleanErrors, origin, postToEndpoint, throwIfRefused, type EndpointDispatcher, type TokenRequest } from './token-endpoint.js'
import { TokenError } from './token-error.js'

const DEFAULT_TIMEOUT_MS = 10_000

export interface RevocationOptions {
  revocationUrl: string
  refreshToken: string
  /** The route's client authentication, as at its token endpoint (RFC 7009 §2.1). */
  clientAuth: ClientAuth
  /** The token endpoint: the audience of a client assertion (RFC 7523 §3); default the revocation endpoint. */
  tokenUrl?: string
  /** ms; default 10 s. */
  timeoutMs?: number
  /** The route's secrets, removed from the reason as well as the token itself. */
  secrets?: Redactor
  signal?: AbortSignal
  dispatcher?: EndpointDispatcher
}

/** `reason` is printable and holds no token or secret. */
export type RevocationResult = { revoked: true } | { revoked: false, reason: string }

/**
 * Revokes a refresh token (RFC 7009 §2.1, `token_type_hint=refresh_token`),
 * which per §2.1 also ends the access tokens issued with it where the server
 * supports that. Never throws for the server's sake: `logout` forgets the
 * stored tokens whatever this says, so a failure is reported, not fatal.
 */
export async function revokeRefreshToken (options: RevocationOptions): Promise<RevocationResult> {
  const url = options.revocationUrl
  const parts: TokenRequestParts = { body: { token: options.refreshToken, token_type_hint: 'refresh_token' }, headers: {} }
  const req: TokenRequest = {
    url,
    encoding: 'form',
    body: parts.body,
    headers: parts.headers,
    timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    // The token is named here as well as in the body, so no clean-up depends on the field's name.
    secrets: (options.secrets ?? Redactor.none).with([options.refreshToken]),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher })
  }
  const where = `revocation endpoint ${origin(url)}`
  try {
    await options.clientAuth(parts, options.tokenUrl ?? url)
    const answer = await postToEndpoint(req, 'revocation endpoint')
    // §2.2: 200 whether the token was revoked or was unknown already; the body means nothing then.
    cleanErrors(req, () => throwIfRefused(answer, where, 'token'))
    return { revoked: true }
  } catch (err) {
    if (err instanceof TokenError) return { revoked: false, reason: err.kind === 'rejected' ? `${where} refused: ${err.message}` : err.message }
    // The client authentication failed before anything was sent (a key it could not sign with).
    return { revoked: false, reason: `revocation request not sent: ${err instanceof Error ? err.name : 'error'}` }
  }
}
