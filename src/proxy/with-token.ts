import type { TokenBroker } from '../auth/broker.js'
import type { TokenSet } from '../auth/token.js'

/**
 * Calls `use` with the broker's token: at once, with no await, when it is
 * cached (the fast path of every request), else once it arrives; `fail` gets
 * the broker's error, thrown at once (backing off) or later.
 */
export function withToken<E extends Error> (broker: TokenBroker, use: (token: TokenSet) => void, fail: (err: E) => void): void {
  let token: Promise<TokenSet> | TokenSet
  try {
    token = broker.token()
  } catch (err) {
    fail(err as E)
    return
  }
  if (token instanceof Promise) token.then(use, fail)
  else use(token)
}
