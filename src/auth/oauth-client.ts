import type { ClientAuth, TokenRequestParts } from './client-auth.js'
import type { DpopProver } from './dpop.js'
import { OAuthEndpoints } from './oauth-endpoints.js'
import type { Redactor } from './redaction.js'
import { revokeRefreshToken, type RevocationResult } from './revocation.js'
import type { TokenResponse } from './token.js'
import { requestToken, type EndpointDispatcher, type TokenRequest } from './token-endpoint.js'
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
  /** The route's DPoP key when its tokens are bound to one (RFC 9449): every grant carries a proof. */
  readonly dpop: DpopProver | undefined
  /** The route's client authentication: its device authorization and revocation requests use it too. */
  readonly clientAuth: ClientAuth
  /** The configured endpoints and the issuer's metadata. */
  readonly endpoints: OAuthEndpoints
  /** The route's own connections to its authorization server (auth.tls), for every request to it. */
  readonly dispatcher: EndpointDispatcher | undefined
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
  /** The route's own connections to the token endpoint (a client certificate, added CAs); default: shared, system CAs. */
  dispatcher?: EndpointDispatcher | undefined
  dpop?: DpopProver | undefined
  /** Where the token endpoint is found when it is discovered (then `tokenUrl` names the issuer); default: `tokenUrl` alone. */
  endpoints?: OAuthEndpoints
}

/** Told the headers of a token endpoint's answer, and the URL that answered. */
type HeadersSeen = (url: string, headers: Record<string, string | string[] | undefined>) => void

export function createOAuthClient ({ tokenUrl, clientAuth, bodyEncoding, extras, timeout, secrets, dispatcher, dpop, endpoints: given }: OAuthClientOptions): OAuthClient {
  const endpoints = given ?? new OAuthEndpoints({ urls: { tokenUrl }, where: '', timeoutMs: timeout })
  const send = async (params: Record<string, string>, signal: AbortSignal, seen?: HeadersSeen): Promise<TokenResponse> => {
    const url = await endpoints.url('tokenUrl', signal)
    const request: TokenRequestParts = { body: { ...params, ...extras }, headers: {} }
    // Made anew for each request, a retry's too: an assertion is used once (RFC 7523 §3).
    await clientAuth(request, url)
    if (dpop !== undefined) request.headers.dpop = await dpop.proof({ method: 'POST', url })
    const onHeaders: TokenRequest['onHeaders'] = seen === undefined ? undefined : (headers) => seen(url, headers)
    return requestToken({ url, encoding: bodyEncoding, body: request.body, headers: request.headers, timeout, secrets, signal, ...(dispatcher === undefined ? {} : { dispatcher }), ...(onHeaders === undefined ? {} : { onHeaders }) })
  }
  return {
    endpoint: tokenUrl,
    secrets,
    dpop,
    clientAuth,
    endpoints,
    dispatcher,
    grant: dpop === undefined ? send : (params, signal) => dpopGrant(dpop, params, signal, send),
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
      return revokeRefreshToken({ revocationUrl, refreshToken, clientAuth, tokenUrl, timeoutMs: timeout, secrets, signal, ...(dispatcher === undefined ? {} : { dispatcher }) })
    }
  }
}

/** What a token type may be to be shown in a message (the endpoint's words reach terminals). */
const PRINTABLE_TOKEN_TYPE = /^[\w.-]{1,40}$/

/**
 * A grant with a DPoP proof (RFC 9449 §5). An answer demanding a nonce
 * (`use_dpop_nonce` with a `DPoP-Nonce` header, §8) is sent once more with it,
 * never a third time; the nonce is kept for the next token requests. A token
 * not bound to the key (`token_type` other than DPoP) is refused: the route
 * was configured for sender-constrained tokens, and a bearer token in their
 * place would silently drop that protection (or be refused by an upstream
 * that expects `DPoP`); the server must be set to bind this client's tokens.
 */
async function dpopGrant (dpop: DpopProver, params: Record<string, string>, signal: AbortSignal, send: (params: Record<string, string>, signal: AbortSignal, seen: HeadersSeen) => Promise<TokenResponse>): Promise<TokenResponse> {
  let nonceGiven = false
  const onHeaders: HeadersSeen = (url, headers) => { nonceGiven = dpop.noteNonce(url, headers['dpop-nonce']) }
  let token: TokenResponse
  try {
    token = await send(params, signal, onHeaders)
  } catch (err) {
    if (!(nonceGiven && err instanceof TokenError && err.oauthError === 'use_dpop_nonce')) throw err
    token = await send(params, signal, onHeaders)
  }
  // token_type is case-insensitive (RFC 6749 §5.1).
  if (token.tokenType?.toLowerCase() !== 'dpop') {
    const said = token.tokenType === undefined ? 'no token_type' : PRINTABLE_TOKEN_TYPE.test(token.tokenType) ? `token_type ${token.tokenType}` : 'another token_type'
    throw new TokenError('rejected', `answered ${said}, not DPoP: the token is not bound to the route's DPoP key (set the client up for DPoP-bound tokens at the server, or remove "dpop")`)
  }
  return token
}

/** RFC 6749 §6: exchange a refresh token for a new access token. */
export function refreshWith (client: OAuthClient): (refreshToken: string, signal: AbortSignal) => Promise<TokenResponse> {
  return (refreshToken, signal) => client.grant({ grant_type: 'refresh_token', refresh_token: refreshToken }, signal)
}
