import type { RequestBudget } from './request-budget.js'

/** Renewals a route's upstream refusals may cause per minute (SPEC "HTTP behaviour of the proxy port"). */
export const REFUSAL_RENEWALS_PER_MINUTE = 3
const REFUSAL_WINDOW_MS = 60_000

/**
 * An upstream that refuses some requests whatever the token must not turn
 * each of them into a token request: refusals renew at most
 * REFUSAL_RENEWALS_PER_MINUTE times in a sliding minute per route, and never
 * while the token endpoint's budget is down to half, which the other routes
 * on it need for their own renewals.
 */
export class RefusalCap {
  readonly #budget: Pick<RequestBudget, 'spare'> | undefined
  /** When refusals dropped a token (epoch ms), within the last minute. */
  readonly #renewals: number[] = []

  constructor (budget?: Pick<RequestBudget, 'spare'>) {
    this.#budget = budget
  }

  /** Whether a refusal at `now` may cause a renewal; if so it is counted. */
  take (now: number): boolean {
    while (this.#renewals.length > 0 && (this.#renewals[0] as number) <= now - REFUSAL_WINDOW_MS) this.#renewals.shift()
    if (this.#renewals.length >= REFUSAL_RENEWALS_PER_MINUTE || this.#budget?.spare(now) === false) return false
    this.#renewals.push(now)
    return true
  }
}
