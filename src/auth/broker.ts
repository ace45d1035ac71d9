import type { Logger } from 'pino'
import { Backoff } from './backoff.js'
import { RefusalCap } from './refusal-cap.js'
import type { RequestBudget } from './request-budget.js'
import { neverUsable, renewAt, usableUntil } from './renewal-policy.js'
import { DEFAULT_TOKEN_TIMEOUT_MS, lockBusy, SharedRenewal } from './shared-renewal.js'
import type { TokenSource } from './token-source.js'
import { datedToken, type TokenResponse, type TokenSet } from './token.js'
import { origin } from './token-endpoint.js'
import { LoginRequired, TokenError } from './token-error.js'
import type { TokenSettings } from './token-settings.js'
import { MemoryTokenStore, type TokenStore } from './token-store.js'

export { MIN_FETCH_INTERVAL_MS } from './backoff.js'
export { REFUSAL_RENEWALS_PER_MINUTE } from './refusal-cap.js'
/** A renewal timer further out than this wakes early and is set again (setTimeout overflows past 2^31 ms). */
const MAX_TIMER_MS = 24 * 3600_000
/**
 * A user-login route without a usable login looks in the store for one (a
 * `bearer-proxy login` in another process) at most this often: a flood of
 * requests answered LOGIN_REQUIRED does not read the store for each.
 */
export const LOGIN_RECHECK_MS = 1000

const TOKEN_EVENTS = { token_obtained: 'token obtained', token_renewed: 'token renewed', token_refreshed: 'token refreshed' } as const

/** How the broker waits for its renewal point: injectable, so lifecycle tests move time by hand. */
export interface Scheduler {
  /** Runs `task` after `ms`, never keeping the process alive; returns what cancels it. */
  schedule (task: () => void, ms: number): () => void
}

/** Node's timers, unref'd: a pending renewal never keeps a CLI command or a closing server alive. */
export const realTimers: Scheduler = {
  schedule (task, ms) {
    const timer = setTimeout(task, ms)
    timer.unref()
    return () => clearTimeout(timer)
  }
}

export interface BrokerOptions {
  /** Route name: store key and log binding. */
  name: string
  source: TokenSource
  settings: TokenSettings
  logger: Logger
  store?: TokenStore
  /** The route's token request timeout (`auth.timeout`), ms: bounds the wait for the store's renewal lock. */
  tokenTimeoutMs?: number
  /** Shared by every route that uses the same token endpoint. */
  budget?: RequestBudget
  /** Wall clock, epoch ms; injected by lifecycle tests. */
  now?: () => number
  /** Timers for renewal on time; injected with `now`. */
  timers?: Scheduler
  random?: () => number
  minFetchIntervalMs?: number
  /** Told about every token request's outcome (metrics). */
  onTokenRequest?: (outcome: 'obtained' | 'refreshed' | 'rejected' | 'unavailable') => void
}

/**
 * - `none`: no token yet (never asked for one);
 * - `valid`: a token good to send (a static key always is);
 * - `expiring`: inside its `minValidity` margin, a renewal due;
 * - `failing`: no usable token and the last token request failed;
 * - `cold`: no usable token and no renewal coming until the next request (the
 *   route went unused for a token lifetime, or its token was forgotten);
 * - `expired`: an expired token whose renewal is under way;
 * - `login_required`: a user-login route with no usable token and no live
 *   refresh token: only `bearer-proxy login` gives it one.
 */
export type TokenState = 'none' | 'valid' | 'expiring' | 'expired' | 'failing' | 'cold' | 'login_required'

export interface BrokerStatus {
  state: TokenState
  expiresAt: number | undefined
  lastRefreshAt: number | undefined
  lastError: string | undefined
  /** When the last error happened (epoch ms); undefined while there is none. */
  lastErrorAt: number | undefined
  /** The token currently served, for the admin port's fingerprint; never printed. */
  token: TokenSet | undefined
}

/**
 * Caches one route's token and decides when to ask its source for another:
 * single flight, early expiry (`minValidity`), renewal on a timer after
 * `refreshAhead` of the lifetime while the route is in use, refresh token
 * first with one fallback to a fresh login, and a per-endpoint budget. The
 * pacing of requests (backoff, minimum interval) is a Backoff's, the cap on
 * renewals caused by upstream refusals a RefusalCap's, and renewing through
 * a store shared with other processes a SharedRenewal's.
 */
export class TokenBroker {
  readonly name: string
  readonly source: TokenSource
  /**
   * Whether its token is ever renewed: false for a fixed credential (no token
   * endpoint), which is never dropped, persisted or asked for again.
   */
  readonly renewable: boolean
  readonly #settings: TokenSettings
  readonly #log: Logger
  readonly #budget: RequestBudget | undefined
  readonly #now: () => number
  readonly #timers: Scheduler
  readonly #backoff: Backoff
  readonly #refusals: RefusalCap
  readonly #shared: SharedRenewal
  readonly #onTokenRequest: NonNullable<BrokerOptions['onTokenRequest']>
  readonly #abort = new AbortController()
  #current: TokenSet | undefined
  #inflight: Promise<TokenSet> | undefined
  #lastError: TokenError | undefined
  #lastErrorAt: number | undefined
  #lastRefreshAt: number | undefined
  /** The upstream refused the current token: never serve it again. */
  #refused = false
  /** When a request last asked for a token: a route unused for a whole token lifetime goes cold. */
  #lastUsedAt: number | undefined
  /** No token yet, or the route went cold: the next token is logged as obtained, not renewed. */
  #cold = true
  #cancelTimer: (() => void) | undefined
  #closed = false
  /** Its tokens come only from a person's login (authorization_code, device_code): `obtain` is never called. */
  readonly #userLogin: boolean
  /** Set while a user-login route has no usable login; cleared by the next token installed. */
  #loginRequired: LoginRequired | undefined
  /** When a user-login route last looked in the store for a login. */
  #loginCheckedAt = -Infinity

  constructor (options: BrokerOptions) {
    this.name = options.name
    this.source = options.source
    this.renewable = options.source.endpoint !== undefined
    this.#userLogin = options.source.login !== undefined
    this.#settings = options.settings
    this.#log = options.logger
    this.#budget = options.budget
    this.#now = options.now ?? Date.now
    this.#timers = options.timers ?? realTimers
    this.#backoff = new Backoff({ random: options.random, minIntervalMs: options.minFetchIntervalMs })
    this.#refusals = new RefusalCap(options.budget)
    this.#shared = new SharedRenewal({
      route: options.name,
      store: options.store ?? new MemoryTokenStore(),
      // A static key is config, not state: only tokens from an endpoint go to the store.
      persistent: this.renewable,
      tokenTimeoutMs: options.tokenTimeoutMs ?? DEFAULT_TOKEN_TIMEOUT_MS,
      margins: options.settings,
      now: this.#now,
      logger: options.logger,
      held: () => this.#current
    })
    this.#onTokenRequest = options.onTokenRequest ?? (() => {})
  }

  /** Loads a stored token, if the store has one that has not expired. */
  async init (): Promise<void> {
    // Undefined also when the store cannot be read: the broker then obtains tokens alone (SPEC "Shared tokens").
    const stored = await this.#shared.load()
    if (stored === undefined) return
    if (stored.expiresAt > this.#now() || stored.refreshToken !== undefined) {
      this.#current = stored
      this.#lastRefreshAt = stored.obtainedAt
      this.#log.info({ event: 'token_restored', expiresIn: secondsLeft(stored, this.#now()) }, 'stored token restored')
    } else {
      this.#log.warn({ event: 'token_file_ignored', reason: 'expired' }, 'stored token ignored')
    }
  }

  /** A token that is good to send now, obtaining one if needed. */
  token (): Promise<TokenSet> | TokenSet {
    const now = this.#now()
    const current = this.#current
    this.#used(now)
    if (current !== undefined && now < usableUntil(current, this.#settings)) {
      // A retired broker still serves what it holds (a shutting-down proxy can still be asked on a
      // kept-alive connection) but starts no renewal there: that is its successor's or the next process's.
      if (!this.#closed && this.#inflight === undefined && now >= renewAt(current, this.#settings) && now >= this.#backoff.retryAt && !this.#awaitingLogin(now)) {
        // Renew in the background; failures are logged and backed off, the current token keeps serving.
        this.#renew().catch(() => {})
      }
      return current
    }
    // Not usable by the margins. A token that never was (it lives shorter than minValidity) is
    // still the freshest the endpoint gives: sent while it has not expired, or for the minimum
    // interval after it was obtained, unless the upstream refused it. A token that was usable is
    // never sent inside its margin, whatever its renewal does.
    const minInterval = this.#backoff.minIntervalMs
    const fallback = current !== undefined && !this.#refused && neverUsable(current, this.#settings) && (current.expiresAt > now || now - current.obtainedAt < minInterval) ? current : undefined
    if (fallback !== undefined && (now < this.#backoff.retryAt || this.#backoff.tooSoon(now) || now - fallback.obtainedAt < minInterval)) return fallback
    if (this.#inflight === undefined && now < this.#backoff.retryAt && this.#lastError !== undefined) throw this.#backoffError(now)
    // No login in hand, and the store was looked at just now: answered at once, with no store read.
    const loginRequired = this.#loginRequired
    if (this.#inflight === undefined && loginRequired !== undefined && this.#awaitingLogin(now)) throw loginRequired
    const renewed = this.#renew()
    if (fallback === undefined || fallback.expiresAt <= now) return renewed
    // If this attempt fails, the unexpired token is still better than an error.
    return renewed.catch((err: unknown) => {
      if (fallback.expiresAt > this.#now()) return fallback
      throw err
    })
  }

  /**
   * For one-shot commands (`token`, `check`): the held token while usable,
   * else one renewal awaited to its end (under the store's lock, written
   * before it returns), so exiting never abandons a refresh in flight and no
   * background renewal is started. If the renewal fails, a token that has not
   * expired is still returned.
   */
  async tokenOnce (): Promise<TokenSet> {
    const current = this.#current
    if (current !== undefined && this.#now() < usableUntil(current, this.#settings)) return current
    try {
      return await this.#renew()
    } catch (err) {
      if (current !== undefined && !this.#refused && current.expiresAt > this.#now()) return current
      throw err
    }
  }

  /**
   * The upstream refused `used`: whether the request is worth sending again
   * with another token. Drops `used` only if it is still the current token, so
   * a late rejection of an old token never discards a newer one. Refusals
   * drop tokens only as far as the RefusalCap lets them (a few a minute, never
   * the budget's last half); past that the token is kept and the refused
   * answer is the client's.
   */
  invalidate (used: TokenSet): boolean {
    // A newer token is in hand (or on its way, this one being dropped already): a replay costs no token request.
    if (this.#current !== used) return true
    const now = this.#now()
    // A renewal already on its way costs nothing more.
    if (this.#inflight === undefined && !this.#refusals.take(now)) {
      this.#log.debug({ event: 'token_refusal_passed_on' }, 'upstream refused the token; renewals for refusals are spent for now, the answer is passed on')
      return false
    }
    this.#current = { ...used, expiresAt: Math.min(used.expiresAt, now) }
    this.#refused = true
    this.#log.info({ event: 'token_invalidated' }, 'upstream refused the token; a new one will be obtained')
    this.#shared.dropRefused(used)
    return true
  }

  status (): BrokerStatus {
    const now = this.#now()
    const current = this.#current
    let state: TokenState
    if (!this.renewable || (current !== undefined && now < usableUntil(current, this.#settings))) state = 'valid'
    else if (this.#userLogin && !liveRefresh(current, now)) {
      state = 'login_required'
      // Shown without waiting for a request: a login made meanwhile by another process is looked for
      // (as often as a request would), so /routes and the status page see it.
      if (!this.#closed && this.#inflight === undefined && !this.#awaitingLogin(now)) this.#renew().catch(() => {})
    } else if (this.#lastError !== undefined) state = 'failing'
    else if (current !== undefined && current.expiresAt > now) state = 'expiring'
    else if (this.#lastRefreshAt === undefined) state = 'none'
    // Nothing renews it until a request asks: no timer set, no token request in flight.
    else if (this.#inflight === undefined && this.#cancelTimer === undefined) state = 'cold'
    else state = 'expired'
    return {
      state,
      expiresAt: current?.expiresAt,
      lastRefreshAt: this.#lastRefreshAt,
      lastError: state === 'login_required' ? this.#loginRequired?.message : this.#lastError?.message,
      lastErrorAt: state === 'login_required' || this.#lastError === undefined ? undefined : this.#lastErrorAt,
      token: current
    }
  }

  /**
   * Renews now, whatever the held token's age (the admin port's "renew"):
   * through the same single flight, store lock, minimum interval and token
   * request budget as any renewal, so it never adds a second concurrent
   * request or presents a refresh token twice. Only the failure backoff is
   * skipped: a person asked, typically after fixing the credentials.
   */
  renewNow (): Promise<TokenSet> {
    return this.#renew()
  }

  /**
   * Keeps the tokens of a person's login (`bearer-proxy login`): dated,
   * written to the store under the route's lock (a running `serve` sharing
   * the store takes them at its next look) and served from now on. Throws
   * when they cannot be stored.
   */
  async storeLogin (response: TokenResponse): Promise<TokenSet> {
    const token = this.#date(response)
    await this.#inflight?.catch(() => {})
    await this.#shared.saveLogin(token)
    this.#install(token)
    this.#log.info({ event: 'login_stored', expiresIn: secondsLeft(token, token.obtainedAt) }, 'login stored')
    return token
  }

  /**
   * Forgets the route's token, in memory and in the store (the admin port's
   * "forget"), and stops its renewal timer: the route goes cold and its next
   * request obtains a new token. A renewal in flight finishes first, and the
   * store's entry goes under the store's lock, so no renewal writes back or
   * adopts the forgotten token afterwards.
   */
  async forget (): Promise<void> {
    await this.#inflight?.catch(() => {})
    await this.#shared.forget(() => {
      this.#cancelTimer?.()
      this.#cancelTimer = undefined
      this.#current = undefined
      this.#refused = false
      this.#cold = true
      this.#lastUsedAt = undefined
      this.#backoff.reset()
      this.#lastError = undefined
      this.#loginRequired = undefined
      this.#loginCheckedAt = -Infinity
      this.#log.info({ event: 'token_forgotten' }, 'token forgotten; the next request obtains a new one')
    })
  }

  /**
   * Renews no more on its own: the renewal timer is cleared and not set again,
   * and a request no longer starts a renewal in the background. A broker a
   * reload replaced, or one of a shutting-down proxy, still serves the
   * requests in flight (renewing only for one that has no usable token), but
   * must not spend a refresh token that its successor (or another process)
   * now holds.
   */
  retire (): void {
    this.#closed = true
    this.#cancelTimer?.()
    this.#cancelTimer = undefined
  }

  /** Stops in-flight token requests and the renewal timer. */
  close (): void {
    this.retire()
    this.#abort.abort()
  }

  /** A request asked for a token: the route is in use (it goes cold only where its timer finds it idle). */
  #used (now: number): void {
    // A static key is never renewed: nothing to track.
    if (!this.renewable) return
    this.#lastUsedAt = now
    if (this.#cancelTimer === undefined && this.#inflight === undefined) this.#arm()
  }

  /** No request for the current token's whole lifetime (or ever): the route is not renewed on its own. */
  #idle (now: number): boolean {
    const current = this.#current
    return current === undefined || this.#lastUsedAt === undefined || now - this.#lastUsedAt >= current.expiresAt - current.obtainedAt
  }

  /** Sets the renewal timer for the current token: its renewal point, or the next retry after a failure. */
  #arm (): void {
    this.#cancelTimer?.()
    this.#cancelTimer = undefined
    const current = this.#current
    // Without a login nothing is renewed on time: a request, /routes or the next login looks again.
    if (this.#closed || current === undefined || !this.renewable || this.#loginRequired !== undefined) return
    const due = this.#dueAt(current)
    if (!Number.isFinite(due)) return
    this.#cancelTimer = this.#timers.schedule(() => this.#onTimer(), Math.min(Math.max(0, due - this.#now()), MAX_TIMER_MS))
  }

  #dueAt (current: TokenSet): number {
    return Math.max(renewAt(current, this.#settings), this.#backoff.nextRequestAt, this.#backoff.retryAt)
  }

  /** Renewal on time, without waiting for a request, while the route is in use; an idle one goes cold. */
  #onTimer (): void {
    this.#cancelTimer = undefined
    const current = this.#current
    // A token request in flight sets the timer again when it ends.
    if (this.#closed || current === undefined || this.#inflight !== undefined) return
    const now = this.#now()
    if (now < this.#dueAt(current)) {
      this.#arm()
      return
    }
    if (this.#idle(now)) {
      this.#cold = true
      this.#log.debug({ event: 'token_idle' }, 'route unused for a token lifetime; renewed again on its next request')
      return
    }
    this.#renew().catch(() => {})
  }

  #renew (): Promise<TokenSet> {
    this.#inflight ??= this.#fetch().finally(() => {
      this.#inflight = undefined
      this.#arm()
    })
    return this.#inflight
  }

  async #fetch (): Promise<TokenSet> {
    if (this.#userLogin) this.#loginCheckedAt = this.#now()
    // Another process sharing the store may have renewed meanwhile (or a person logged in): take its
    // token, with no wait, lock or request.
    const newer = await this.#shared.newer()
    if (newer !== undefined && this.#now() < usableUntil(newer, this.#settings)) return this.#adopt(newer)
    // A user login without a live refresh token: nothing to ask the token endpoint, no lock to take.
    if (this.#userLogin && !liveRefresh(newer ?? this.#current, this.#now())) throw this.#needsLogin()
    const wait = this.#backoff.wait(this.#now())
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait).unref())
    const previous = this.#current
    try {
      const { token, outcome } = await this.#shared.renew((held) => this.#obtain(held))
      if (outcome === 'adopted') return this.#adopt(token)
      const refreshed = outcome === 'refreshed'
      // A fresh login after a token of a route in use is a renewal too; "obtained" is a
      // route's first token, or one after the route went cold or its token was refused.
      const event: keyof typeof TOKEN_EVENTS = refreshed ? 'token_refreshed' : previous === undefined || this.#cold || this.#refused ? 'token_obtained' : 'token_renewed'
      this.#install(token)
      // A static key is read from config: no token request was made.
      if (this.renewable) this.#onTokenRequest(refreshed ? 'refreshed' : 'obtained')
      this.#log.info({ event, expiresIn: secondsLeft(token, token.obtainedAt) }, TOKEN_EVENTS[event])
      return token
    } catch (err) {
      // No token request was made: nothing to back off from or count.
      if (err instanceof LoginRequired) throw err
      // Only a TokenError's message is made to be shown (its secrets removed); any other error's
      // may quote what it was working on, a key or a token, so clients and logs get its name alone.
      const error = err instanceof TokenError ? err : new TokenError('unavailable', `an unexpected ${err instanceof Error ? err.name : 'error'} while getting a token`, { cause: err })
      this.#lastError = error
      this.#lastErrorAt = this.#now()
      if (!lockBusy(error)) this.#onTokenRequest(error.kind)
      const retryAt = this.#backoff.failed(this.#now(), error.retryAfterMs)
      this.#log.warn({ event: 'token_failed', kind: error.kind, status: error.status, reason: error.message, retryInMs: Math.round(retryAt - this.#now()) }, 'token request failed')
      throw error
    }
  }

  /** `token` is the one served from now on: whatever failed before is over, and the route is in use. */
  #install (token: TokenSet): void {
    this.#cold = false
    this.#current = token
    this.#refused = false
    this.#backoff.reset()
    this.#lastError = undefined
    this.#loginRequired = undefined
    this.#lastRefreshAt = token.obtainedAt
  }

  /** Serves a token another process obtained and stored; no token request was made. */
  #adopt (token: TokenSet): TokenSet {
    this.#install(token)
    this.#log.info({ event: 'token_adopted', expiresIn: secondsLeft(token, this.#now()) }, 'token renewed by another process taken from the store')
    return token
  }

  /** Refresh token while one is held and valid; a refused refresh falls back to one fresh login. */
  async #obtain (previous: TokenSet | undefined): Promise<{ token: TokenSet, refreshed: boolean }> {
    const refresh = this.source.refresh
    const refreshToken = previous?.refreshToken
    if (refresh !== undefined && refreshToken !== undefined && liveRefresh(previous, this.#now())) {
      try {
        return { token: this.#date(await this.#call((signal) => refresh(refreshToken, signal)), previous), refreshed: true }
      } catch (err) {
        if (!(err instanceof TokenError && err.kind === 'rejected')) throw err
        this.#onTokenRequest('rejected')
        if (this.#userLogin) {
          // Only a person can log in again: the dead refresh token goes, here and in the store (we hold
          // its lock), and no token request is made until the next login. An access token still
          // usable keeps being served until its margin.
          this.#log.info({ event: 'refresh_refused', reason: err.message }, 'refresh token refused; the route needs a login')
          await this.#shared.forgetRefreshToken(refreshToken)
          const current = this.#current
          if (current?.refreshToken === refreshToken) this.#current = { accessToken: current.accessToken, obtainedAt: current.obtainedAt, expiresAt: current.expiresAt }
          throw this.#needsLogin(`its refresh token was refused: ${err.message}`)
        }
        this.#log.info({ event: 'refresh_refused', reason: err.message }, 'refresh token refused; logging in again')
      }
    }
    if (this.#userLogin) throw this.#needsLogin()
    return { token: this.#date(await this.#call((signal) => this.source.obtain(signal))), refreshed: false }
  }

  async #call (request: (signal: AbortSignal) => Promise<TokenResponse>): Promise<TokenResponse> {
    const now = this.#now()
    const waitMs = this.source.endpoint === undefined ? undefined : this.#budget?.take(now)
    if (waitMs !== undefined) {
      throw new TokenError('unavailable', `token request budget of ${this.#settings.maxRequestsPerMinute}/min for ${origin(this.source.endpoint as string)} is spent`, { retryAfterMs: waitMs })
    }
    this.#backoff.sent(now)
    return request(this.#abort.signal)
  }

  /** A user-login route that found no login in the store less than LOGIN_RECHECK_MS ago. */
  #awaitingLogin (now: number): boolean {
    return this.#loginRequired !== undefined && now - this.#loginCheckedAt < LOGIN_RECHECK_MS
  }

  /** The route has no usable login: logged when that starts, not at each request. */
  #needsLogin (reason?: string): LoginRequired {
    const error = new LoginRequired(this.name, reason)
    if (this.#loginRequired === undefined) this.#log.warn({ event: 'login_required', ...(reason === undefined ? {} : { reason }) }, `no usable login: run bearer-proxy login ${this.name}`)
    this.#loginRequired = error
    return error
  }

  #date (response: TokenResponse, previous?: TokenSet): TokenSet {
    return datedToken(response, this.#now(), this.#settings.defaultTtl, previous)
  }

  #backoffError (now: number): TokenError {
    const last = this.#lastError as TokenError
    return new TokenError(last.kind, last.message, {
      ...(last.status === undefined ? {} : { status: last.status }),
      ...(last.oauthError === undefined ? {} : { oauthError: last.oauthError }),
      retryAfterMs: this.#backoff.retryAt - now
    })
  }
}

export function secondsLeft (token: TokenSet, now: number): number | null {
  return token.expiresAt === Infinity ? null : Math.round((token.expiresAt - now) / 1000)
}

/** Whether `token` carries a refresh token that has not expired (as far as the server said). */
function liveRefresh (token: TokenSet | undefined, now: number): boolean {
  return token?.refreshToken !== undefined && (token.refreshExpiresAt === undefined || token.refreshExpiresAt > now)
}
