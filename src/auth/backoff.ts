/** Token requests for one route are at least this far apart (SPEC "Token lifecycle"). */
export const MIN_FETCH_INTERVAL_MS = 1000
/** The wait after a first failure; it doubles with each failure in a row, up to BACKOFF_MAX_MS. */
export const BACKOFF_BASE_MS = 1000
export const BACKOFF_MAX_MS = 60_000
/** A Retry-After longer than this is not honoured to the letter. */
export const RETRY_AFTER_MAX_MS = 3600_000

/**
 * How long to wait after the `failures`-th failed token request in a row:
 * exponential from BACKOFF_BASE_MS, capped at BACKOFF_MAX_MS, with "equal
 * jitter" (at least half the step, so retries neither sync up nor come too
 * fast), and never shorter than the endpoint's Retry-After (up to an hour).
 * `random` is in [0, 1), as Math.random.
 */
export function backoffDelay (failures: number, random: () => number, retryAfterMs?: number): number {
  const exp = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (failures - 1))
  const jittered = exp / 2 + random() * exp / 2
  return Math.max(jittered, Math.min(retryAfterMs ?? 0, RETRY_AFTER_MAX_MS))
}

export interface BackoffOptions {
  random?: () => number
  minIntervalMs?: number
}

/**
 * When one route's next token request may go: not before the minimum
 * interval since the last one was sent, and after a failure not before its
 * backoff is over. Times are epoch ms, given by the caller (the broker's
 * clock).
 */
export class Backoff {
  readonly minIntervalMs: number
  readonly #random: () => number
  #failures = 0
  #retryAt = 0
  #lastSentAt = -Infinity

  constructor (options: BackoffOptions = {}) {
    this.#random = options.random ?? Math.random
    this.minIntervalMs = options.minIntervalMs ?? MIN_FETCH_INTERVAL_MS
  }

  /** Before this, no renewal after a failure (0 while the last request did not fail). */
  get retryAt (): number {
    return this.#retryAt
  }

  /** When the minimum interval since the last request sent is over. */
  get nextRequestAt (): number {
    return this.#lastSentAt + this.minIntervalMs
  }

  /** Whether the last request was sent less than the minimum interval before `now`. */
  tooSoon (now: number): boolean {
    return now - this.#lastSentAt < this.minIntervalMs
  }

  /** How long a request made at `now` waits for the minimum interval (nothing when ≤ 0), at most one interval. */
  wait (now: number): number {
    return Math.min(this.minIntervalMs, this.nextRequestAt - now)
  }

  /** A token request was sent at `now`. */
  sent (now: number): void {
    this.#lastSentAt = now
  }

  /** A token request failed at `now`: the next waits out the backoff. Returns when it may go. */
  failed (now: number, retryAfterMs: number | undefined): number {
    this.#failures++
    this.#retryAt = now + backoffDelay(this.#failures, this.#random, retryAfterMs)
    return this.#retryAt
  }

  /** A token was installed, or the route's token forgotten: the failures in a row are over. */
  reset (): void {
    this.#failures = 0
    this.#retryAt = 0
  }
}
