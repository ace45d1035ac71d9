/** "Recent" request counts cover this long, in RECENT_STEPS steps (the status page, `status`). */
export const RECENT_WINDOW_MS = 5 * 60_000
const RECENT_STEPS = 30
const STEP_MS = RECENT_WINDOW_MS / RECENT_STEPS

/** What a person wants to know of one route at a glance; counts since the process started, unless `recent`. */
export interface RouteActivity {
  requests: { total: number, errors: number, recent: { total: number, errors: number, seconds: number } }
  tokenRequests: { total: number, failed: number }
}

/**
 * One route's request and token request counts, with the last
 * RECENT_WINDOW_MS kept as a ring of fixed steps: constant memory and a few
 * array writes per request, never a list of requests. An error is an answer
 * of 500 or more (the proxy's own TOKEN_* and UPSTREAM_* errors included).
 */
export class ActivityCounter {
  requests = 0
  errors = 0
  tokenRequests = 0
  tokenFailures = 0
  /** Per slot, the step (time / STEP_MS) it counts; a slot of an older step is stale. */
  readonly #steps = new Float64Array(RECENT_STEPS).fill(-1)
  readonly #counts = new Uint32Array(RECENT_STEPS)
  readonly #errors = new Uint32Array(RECENT_STEPS)

  request (now: number, error: boolean): void {
    this.requests++
    if (error) this.errors++
    const step = Math.floor(now / STEP_MS)
    const slot = step % RECENT_STEPS
    if (this.#steps[slot] !== step) {
      this.#steps[slot] = step
      this.#counts[slot] = 0
      this.#errors[slot] = 0
    }
    this.#counts[slot]++
    if (error) this.#errors[slot]++
  }

  view (now: number): RouteActivity {
    const oldest = Math.floor(now / STEP_MS) - RECENT_STEPS + 1
    let total = 0
    let errors = 0
    for (let slot = 0; slot < RECENT_STEPS; slot++) {
      if (this.#steps[slot] < oldest) continue
      total += this.#counts[slot]
      errors += this.#errors[slot]
    }
    return {
      requests: { total: this.requests, errors: this.errors, recent: { total, errors, seconds: RECENT_WINDOW_MS / 1000 } },
      tokenRequests: { total: this.tokenRequests, failed: this.tokenFailures }
    }
  }
}
