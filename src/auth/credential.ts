import type { IncomingHttpHeaders } from 'node:http'
import type { TokenBroker } from './broker.js'
import type { TokenSet } from './token.js'
import { formatToken, type OutgoingRequest, type TokenFormat } from './token-source.js'

/** The credential headers one request is sent with. */
export interface CredentialHeaders {
  /** [lower-case name, value] pairs, set on the upstream request last, over any the client sent. */
  readonly headers: ReadonlyArray<readonly [string, string]>
  /** The token they carry: the proxy passes it back to `answered`, never reads it. */
  readonly token: TokenSet
}

/**
 * What a route's requests carry to their upstream, and what an upstream's
 * refusal means for it. The proxy knows no token, scheme or broker: only this.
 */
export interface RouteCredential {
  /**
   * Headers for this request: a value (no await) when a token is cached, the
   * fast path of every request; a promise otherwise. Throws at once while
   * token requests are backing off.
   */
  headersFor (request?: OutgoingRequest): CredentialHeaders | Promise<CredentialHeaders>
  /**
   * The upstream's answer to a request sent with `sent`: true when that
   * request is worth sending once more with new headers (the refused token was
   * dropped). A request is sent once more at most: the caller asks once.
   */
  answered (sent: CredentialHeaders, statusCode: number, headers: IncomingHttpHeaders): boolean
  /**
   * The headers of an answer it is not asked about (a replayed request's), for
   * what they teach the credential (a DPoP nonce, RFC 9449 §8); optional.
   */
  noted?: (sent: CredentialHeaders, headers: IncomingHttpHeaders) => void
  /** Whether a refusal can ever be cured by a new credential (false for a static key). */
  readonly renewable: boolean
  /** Whether the headers depend on the request (a signed proof): if not, `headersFor` may be given none. */
  readonly perRequest: boolean
}

/**
 * The credential of a route whose broker holds a token: an answer with a
 * `retryOn` status drops the token it was sent with (within the broker's cap on
 * renewals caused by refusals, SPEC "HTTP behaviour of the proxy port").
 */
export function tokenCredential (broker: TokenBroker, format: TokenFormat, retryOn: Iterable<number>): RouteCredential {
  const refusals = new Set(retryOn)
  // A static key would come back the same: dropping it or sending it again only repeats the refusal.
  const renewable = broker.renewable
  // The same token gives the same headers: made once per token, not per request.
  let last: CredentialHeaders | undefined
  const headers = (token: TokenSet): CredentialHeaders => {
    if (last?.token !== token) last = { headers: [formatToken(format, token)], token }
    return last
  }

  return {
    renewable,
    perRequest: false,
    headersFor () {
      const token = broker.token()
      return token instanceof Promise ? token.then(headers) : headers(token)
    },
    answered (sent, statusCode) {
      // The broker drops the refused token (so a request that cannot be sent again still leaves
      // a new one for the next), unless refusals have renewed it enough this minute: an upstream
      // that refuses this request whatever the token then gets its answer passed on.
      return renewable && refusals.has(statusCode) && broker.invalidate(sent.token)
    }
  }
}
