import type { TokenBroker } from './broker.js'
import type { CredentialHeaders, RouteCredential } from './credential.js'
import { isNonceChallenge, type DpopProver } from './dpop.js'
import type { TokenSet } from './token.js'

/**
 * The credential of a route whose tokens are DPoP-bound (RFC 9449 §7):
 * `Authorization: DPoP <token>` and a `DPoP` proof signed for this request's
 * method and upstream URL and the token's hash. Signing is asynchronous, so
 * headers always come as a promise (a bearer route's fast path is not this).
 *
 * An upstream's nonce challenge (401, `WWW-Authenticate: DPoP
 * error="use_dpop_nonce"` and a `DPoP-Nonce`, §9) sends the request once more
 * with a proof carrying the nonce, keeping the token; any other `retryOn`
 * answer drops the token as for a bearer route. A `DPoP-Nonce` on any answer
 * is kept for the next requests to that origin.
 */
export function dpopCredential (broker: TokenBroker, prover: DpopProver, retryOn: Iterable<number>): RouteCredential {
  const refusals = new Set(retryOn)
  const renewable = broker.renewable
  /** The upstream URL each set of headers was signed for: its answer's nonce belongs to that origin. */
  const urls = new WeakMap<CredentialHeaders, string>()

  const headers = async (token: TokenSet, method: string, url: string): Promise<CredentialHeaders> => {
    const proof = await prover.proof({ method, url, accessToken: token.accessToken })
    const sent: CredentialHeaders = { headers: [['authorization', `DPoP ${token.accessToken}`], ['dpop', proof]], token }
    urls.set(sent, url)
    return sent
  }

  return {
    renewable,
    perRequest: true,
    headersFor (request) {
      // A proof is bound to one request's method and URL: there is none to sign without them.
      if (request === undefined) throw new Error('a DPoP credential signs each request: headersFor needs it')
      const { method, url } = request
      const token = broker.token()
      return token instanceof Promise ? token.then((t) => headers(t, method, url)) : headers(token, method, url)
    },
    answered (sent, statusCode, answerHeaders) {
      const url = urls.get(sent)
      const nonce = url !== undefined && prover.noteNonce(url, answerHeaders['dpop-nonce'])
      // The token is fine, the proof lacked the fresh nonce now in hand: the same token, a new proof.
      if (nonce && statusCode === 401 && isNonceChallenge(answerHeaders['www-authenticate'])) return true
      return renewable && refusals.has(statusCode) && broker.invalidate(sent.token)
    },
    noted (sent, answerHeaders) {
      const url = urls.get(sent)
      if (url !== undefined) prover.noteNonce(url, answerHeaders['dpop-nonce'])
    }
  }
}
