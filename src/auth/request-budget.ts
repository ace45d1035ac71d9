const WINDOW_MS = 60_000

/**
 * At most `limit` token requests per sliding minute to one token endpoint,
 * shared by every route that uses it (SPEC "Token lifecycle").
 */
export class RequestBudget {
  readonly #limit: number
  readonly #sent: number[] = []

  constructor (limit: number) {
    this.#limit = limit
  }

  /** Takes a slot: undefined when granted, else ms until one frees up. */
  take (now: number): number | undefined {
    this.#expire(now)
    if (this.#sent.length >= this.#limit) return (this.#sent[0] as number) + WINDOW_MS - now
    this.#sent.push(now)
    return undefined
  }

  /**
   * Whether a token request that only an upstream's refusal asks for may be
   * made: it must leave half of the budget (rounded down) to the renewals
   * of every route on the endpoint.
   */
  spare (now: number): boolean {
    this.#expire(now)
    return this.#limit - this.#sent.length - 1 >= Math.floor(this.#limit / 2)
  }

  #expire (now: number): void {
    while (this.#sent.length > 0 && (this.#sent[0] as number) <= now - WINDOW_MS) this.#sent.shift()
  }
}

/** One budget per token endpoint URL. */
export class RequestBudgets {
  readonly limit: number
  readonly #budgets = new Map<string, RequestBudget>()

  constructor (limit: number) {
    this.limit = limit
  }

  for (endpoint: string): RequestBudget {
    let budget = this.#budgets.get(endpoint)
    if (budget === undefined) {
      budget = new RequestBudget(this.limit)
      this.#budgets.set(endpoint, budget)
    }
    return budget
  }
}
