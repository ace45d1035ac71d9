import type { Dispatcher } from 'undici'
import type { ClientAuth, TokenRequestParts } from './client-auth.js'
import type { Redactor } from './redaction.js'
import type { TokenResponse } from './token.js'
import { requestToken } from './token-endpoint.js'

/**
 * A client of one token endpoint: sends a grant with its client
 * authentication and the extras every grant of the route carries (scope,
 * audience, params).
 */
export interface OAuthClient {
  readonly endpoint: string
  /** Every secret of the route's auth block, in every encoding (built once). */
  readonly secrets: Redactor
  grant (params: Record<string, string>, signal: AbortSignal): Promise<TokenResponse>
}

export interface OAuthClientOptions {
  tokenUrl: string
  clientAuth: ClientAuth
  bodyEncoding: 'form' | 'json'
  /** Fields added to every grant. */
  extras: Record<string, string>
  timeout: number
  secrets: Redactor
  /** The route's own connections to the token endpoint (a client certificate, added CAs); default: shared, system CAs. */
  dispatcher?: Dispatcher | undefined
}

export function createOAuthClient ({ tokenUrl, clientAuth, bodyEncoding, extras, timeout, secrets, dispatcher }: OAuthClientOptions): OAuthClient {
  return {
    endpoint: tokenUrl,
    secrets,
    async grant (params, signal) {
      const request: TokenRequestParts = { body: { ...params, ...extras }, headers: {} }
      await clientAuth(request, tokenUrl)
      return requestToken({ url: tokenUrl, encoding: bodyEncoding, body: request.body, headers: request.headers, timeout, secrets, signal, ...(dispatcher === undefined ? {} : { dispatcher }) })
    }
  }
}

/** RFC 6749 §6: exchange a refresh token for a new access token. */
export function refreshWith (client: OAuthClient): (refreshToken: string, signal: AbortSignal) => Promise<TokenResponse> {
  return (refreshToken, signal) => client.grant({ grant_type: 'refresh_token', refresh_token: refreshToken }, signal)
}
