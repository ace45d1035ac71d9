import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyError } from 'fastify'
import type { CredentialHeaders, RouteCredential } from '../auth/credential.js'
import type { OutgoingRequest } from '../auth/token-source.js'
import { ReplayableBody } from './body.js'
import type { ProxyState } from './request-state.js'

/**
 * Whether the upstream's answer refused the request's credential and the
 * request can be sent once more: never twice, and only with the whole body in
 * hand (an upstream that answered before reading it all may have made undici
 * drop the rest, and half a body must never be sent). The credential hears of
 * every first answer, so a refused token is dropped even when its request
 * cannot be replayed, leaving a new one for the next request.
 */
export function shouldReplay (state: ProxyState, credential: RouteCredential, statusCode: number, headers: IncomingHttpHeaders): boolean {
  if (state.replayed) {
    credential.noted?.(state.sent, headers)
    return false
  }
  if (!credential.answered(state.sent, statusCode, headers)) return false
  const body = state.request.body
  return body === undefined || (body instanceof ReplayableBody && body.complete)
}

/**
 * Sends a refused request once more: new credential headers, and a fresh
 * stream over the kept body. `send` forwards it; `fail` answers the client
 * when no credential comes.
 */
export function replay (state: ProxyState, credential: RouteCredential, outgoing: OutgoingRequest, send: (state: ProxyState) => void, fail: (state: ProxyState, err: FastifyError) => void): void {
  state.replayed = true
  // headersFor() may throw at once (backing off): inside then() that becomes a rejection, not a crash.
  Promise.resolve().then(() => credential.headersFor(outgoing)).then((sent: CredentialHeaders) => {
    state.sent = sent
    if (state.body !== undefined) state.request.body = state.body.replay()
    send(state)
  }, (err: FastifyError) => fail(state, err))
}
