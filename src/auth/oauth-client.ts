import type { ClientAuth, TokenRequestParts } from './client-auth.js'
import { OAuthEndpoints } from './oauth-endpoints.js'
import type { Redactor } from './redaction.js'
import { revokeRefreshToken, type RevocationResult } from './revocation.js'
import type { TokenResponse } from './token.js'
import { requestToken } from './token-endpoint.js'
import { TokenError } from './token-error.js'

/**
 * A client of one token endpoint: sends a grant with its client
 * authentication and the extras every grant of the route carries (scope,
 * audience, params).
 */
export interface OAuthClient {
  /** The token endpoint's URL, or the issuer's while it is discovered: the request budget's key. */
  readonly endpoint: string
  /** Every secret of the route's auth block, in every encoding (built once). */
  readonly secrets: Redactor
  /** The route's client authentication: its device authorization and revocation requests use it too. */
  readonly clientAuth: ClientAuth
  /** The configured endpoints and the issuer's metadata. */
  readonly endpoints: OAuthEndpoints
  grant (params: Record<string, string>, signal: AbortSignal): Promise<TokenResponse>
  /** RFC 7009 revocation of a refresh token; undefined when the route knows no revocation endpoint. */
  revoke (refreshToken: string, signal: AbortSignal): Promise<RevocationResult | undefined>
}

export interface OAuthClientOptions {
  tokenUrl: string
  clientAuth: ClientAuth
  bodyEncoding: 'form' | 'json'
  /** Fields added to every grant. */
  extras: Record<string, string>
  timeout: number
  secrets: Redactor
  /** Where the token endpoint is found when it is discovered (then `tokenUrl` names the issuer); default: `tokenUrl` alone. */
  endpoints?: OAuthEndpoints
}

export function createOAuthClient ({ tokenUrl, clientAuth, bodyEncoding, extras, timeout, secrets, endpoints: given }: OAuthClientOptions): OAuthClient {
  const endpoints = given ?? new OAuthEndpoints({ urls: { tokenUrl }, where: '', timeoutMs: timeout })
  return {
    endpoint: tokenUrl,
    secrets,
    clientAuth,
    endpoints,
    async grant (params, signal) {
      const url = await endpoints.url('tokenUrl', signal)
      const request: TokenRequestParts = { body: { ...params, ...extras }, headers: {} }
      await clientAuth(request, url)
      return requestToken({ url, encoding: bodyEncoding, body: request.body, headers: request.headers, timeout, secrets, signal })
    },
    async revoke (refreshToken, signal) {
      let revocationUrl: string | undefined
      let tokenUrl: string
      try {
        revocationUrl = await endpoints.optional('revocationUrl', signal)
        if (revocationUrl === undefined) return undefined
        tokenUrl = await endpoints.url('tokenUrl', signal)
      } catch (err) {
        // Discovery failed: reported like a failed revocation, never thrown (logout forgets the tokens anyway).
        if (err instanceof TokenError) return { revoked: false, reason: err.message }
        throw err
      }
      return revokeRefreshToken({ revocationUrl, refreshToken, clientAuth, tokenUrl, timeoutMs: timeout, secrets, signal })
    }
  }
}

/** RFC 6749 §6: exchange a refresh token for a new access token. */
export function refreshWith (client: OAuthClient): (refreshToken: string, signal: AbortSignal) => Promise<TokenResponse> {
  return (refreshToken, signal) => client.grant({ grant_type: 'refresh_token', refresh_token: refreshToken }, signal)
}
