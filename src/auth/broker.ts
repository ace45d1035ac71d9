import type { Logger } from 'pino'
import type { RequestBudget } from './request-budget.js'
import { neverUsable, renewAt, usableUntil } from './renewal-policy.js'
import type { AuthScheme } from './scheme.js'
import { datedToken, type TokenResponse, type TokenSet } from './token.js'
import { origin } from './token-endpoint.js'
import { TokenError } from './token-error.js'
import type { TokenSettings } from './token-settings.js'
import { MemoryTokenStore, StoreUnavailableError, type StoreLock, type TokenStore } from './token-store.js'

/** Token requests for one route are at least this far apart (SPEC "Token lifecycle"). */
export const MIN_FETCH_INTERVAL_MS = 1000
const BACKOFF_BASE_MS = 1000
const BACKOFF_MAX_MS = 60_000
/** A Retry-After longer than this is not honoured to the letter. */
const RETRY_AFTER_MAX_MS = 3600_000
/** The token request timeout of schemes that do not say (SPEC "Shared tokens": `auth.timeout`, default 10 s). */
const DEFAULT_TOKEN_TIMEOUT_MS = 10_000
/** A renewal lock's lease, in token timeouts: long enough for a refresh, its fallback login and the write. */
const LOCK_LEASE_TIMEOUTS = 3
/** Marks a renewal that failed because another process kept the lock: no token request was made. */
const LOCK_BUSY = Symbol('lock busy')
/** Renewals a route's upstream refusals may cause per minute (SPEC "HTTP behaviour of the proxy port"). */
export const REFUSAL_RENEWALS_PER_MINUTE = 3
const REFUSAL_WINDOW_MS = 60_000
/** A renewal timer further out than this wakes early and is set again (setTimeout overflows past 2^31 ms). */
const MAX_TIMER_MS = 24 * 3600_000

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
  scheme: AuthScheme
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
 * - `expired`: an expired token whose renewal is under way.
 */
export type TokenState = 'none' | 'valid' | 'expiring' | 'expired' | 'failing' | 'cold'

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
 * Caches one route's token and decides when to ask the scheme for another:
 * single flight, early expiry (`minValidity`), renewal on a timer after
 * `refreshAhead` of the lifetime while the route is in use, refresh token
 * first with one fallback to a fresh login, exponential backoff with jitter
 * that honours Retry-After, a minimum interval between requests, a
 * per-endpoint budget and a cap on renewals caused by upstream refusals.
 */
export class TokenBroker {
  readonly name: string
  readonly scheme: AuthScheme
  readonly #settings: TokenSettings
  readonly #log: Logger
  readonly #store: TokenStore
  readonly #tokenTimeoutMs: number
  readonly #budget: RequestBudget | undefined
  readonly #now: () => number
  readonly #timers: Scheduler
  readonly #random: () => number
  readonly #minInterval: number
  readonly #onTokenRequest: NonNullable<BrokerOptions['onTokenRequest']>
  readonly #abort = new AbortController()
  #current: TokenSet | undefined
  #inflight: Promise<TokenSet> | undefined
  #failures = 0
  #nextAttemptAt = 0
  #lastError: TokenError | undefined
  #lastErrorAt: number | undefined
  #lastFetchAt = -Infinity
  #lastRefreshAt: number | undefined
  /** The upstream refused the current token: never serve it again. */
  #refused = false
  /** When the upstream's refusals last dropped a token (epoch ms), within the last minute. */
  readonly #refusalRenewals: number[] = []
  /** When a request last asked for a token: a route unused for a whole token lifetime goes cold. */
  #lastUsedAt: number | undefined
  /** No token yet, or the route went cold: the next token is logged as obtained, not renewed. */
  #cold = true
  #cancelTimer: (() => void) | undefined
  #closed = false

  constructor (options: BrokerOptions) {
    this.name = options.name
    this.scheme = options.scheme
    this.#settings = options.settings
    this.#log = options.logger
    this.#store = options.store ?? new MemoryTokenStore()
    this.#tokenTimeoutMs = options.tokenTimeoutMs ?? DEFAULT_TOKEN_TIMEOUT_MS
    this.#budget = options.budget
    this.#now = options.now ?? Date.now
    this.#timers = options.timers ?? realTimers
    this.#random = options.random ?? Math.random
    this.#minInterval = options.minFetchIntervalMs ?? MIN_FETCH_INTERVAL_MS
    this.#onTokenRequest = options.onTokenRequest ?? (() => {})
  }

  /** Loads a stored token, if the store has one that has not expired. */
  async init (): Promise<void> {
    if (this.scheme.endpoint === undefined) return
    let stored: TokenSet | undefined
    try {
      stored = await this.#store.load(this.name)
    } catch (err) {
      // The store unreachable, or unusable (a state dir opened up to other users): serve anyway,
      // obtaining tokens alone (SPEC "Shared tokens").
      this.#storeFailed(err, 'could not read the stored token')
      return
    }
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
      if (!this.#closed && this.#inflight === undefined && now >= renewAt(current, this.#settings) && now >= this.#nextAttemptAt) {
        // Renew in the background; failures are logged and backed off, the current token keeps serving.
        this.#renew().catch(() => {})
      }
      return current
    }
    // Not usable by the margins. A token that never was (it lives shorter than minValidity) is
    // still the freshest the endpoint gives: sent while it has not expired, or for the minimum
    // interval after it was obtained, unless the upstream refused it. A token that was usable is
    // never sent inside its margin, whatever its renewal does.
    const fallback = current !== undefined && !this.#refused && neverUsable(current, this.#settings) && (current.expiresAt > now || now - current.obtainedAt < this.#minInterval) ? current : undefined
    if (fallback !== undefined && (now < this.#nextAttemptAt || now - this.#lastFetchAt < this.#minInterval || now - fallback.obtainedAt < this.#minInterval)) return fallback
    if (this.#inflight === undefined && now < this.#nextAttemptAt && this.#lastError !== undefined) throw this.#backoffError(now)
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
   * a late rejection of an old token never discards a newer one. An upstream
   * that refuses some requests whatever the token must not turn each of them
   * into a token request: refusals drop at most REFUSAL_RENEWALS_PER_MINUTE
   * tokens a minute, and never while the token endpoint's budget is down to
   * half, which the other routes on it need. Past that the token is kept and
   * the refused answer is the client's.
   */
  invalidate (used: TokenSet): boolean {
    // A newer token is in hand (or on its way, this one being dropped already): a replay costs no token request.
    if (this.#current !== used) return true
    const now = this.#now()
    // A renewal already on its way costs nothing more.
    if (this.#inflight === undefined) {
      while (this.#refusalRenewals.length > 0 && (this.#refusalRenewals[0] as number) <= now - REFUSAL_WINDOW_MS) this.#refusalRenewals.shift()
      if (this.#refusalRenewals.length >= REFUSAL_RENEWALS_PER_MINUTE || this.#budget?.spare(now) === false) {
        this.#log.debug({ event: 'token_refusal_passed_on' }, 'upstream refused the token; renewals for refusals are spent for now, the answer is passed on')
        return false
      }
      this.#refusalRenewals.push(now)
    }
    this.#current = { ...used, expiresAt: Math.min(used.expiresAt, now) }
    this.#refused = true
    this.#log.info({ event: 'token_invalidated' }, 'upstream refused the token; a new one will be obtained')
    this.#dropStored(used).catch((err: unknown) => this.#storeFailed(err, 'could not drop the refused token from the store'))
    return true
  }

  status (): BrokerStatus {
    const now = this.#now()
    const current = this.#current
    let state: TokenState
    if (this.scheme.endpoint === undefined || (current !== undefined && now < usableUntil(current, this.#settings))) state = 'valid'
    else if (this.#lastError !== undefined) state = 'failing'
    else if (current !== undefined && current.expiresAt > now) state = 'expiring'
    else if (this.#lastRefreshAt === undefined) state = 'none'
    // Nothing renews it until a request asks: no timer set, no token request in flight.
    else if (this.#inflight === undefined && this.#cancelTimer === undefined) state = 'cold'
    else state = 'expired'
    return {
      state,
      expiresAt: current?.expiresAt,
      lastRefreshAt: this.#lastRefreshAt,
      lastError: this.#lastError?.message,
      lastErrorAt: this.#lastError === undefined ? undefined : this.#lastErrorAt,
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
   * Forgets the route's token, in memory and in the store (the admin port's
   * "forget"), and stops its renewal timer: the route goes cold and its next
   * request obtains a new token. A renewal in flight finishes first, and the
   * store's entry goes under the store's lock, so no renewal writes back or
   * adopts the forgotten token afterwards.
   */
  async forget (): Promise<void> {
    await this.#inflight?.catch(() => {})
    const lock = this.#persistent ? await this.#lock() : undefined
    try {
      // Forgotten also when another process keeps the lock: its renewal writes a new token, not this one.
      if (this.#persistent) await this.#store.delete(this.name)
      this.#cancelTimer?.()
      this.#cancelTimer = undefined
      this.#current = undefined
      this.#refused = false
      this.#cold = true
      this.#lastUsedAt = undefined
      this.#failures = 0
      this.#nextAttemptAt = 0
      this.#lastError = undefined
      this.#log.info({ event: 'token_forgotten' }, 'token forgotten; the next request obtains a new one')
    } finally {
      if (lock !== undefined && lock !== 'busy') await lock.release()
    }
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
    if (this.scheme.endpoint === undefined) return
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
    if (this.#closed || current === undefined || this.scheme.endpoint === undefined) return
    const due = this.#dueAt(current)
    if (!Number.isFinite(due)) return
    this.#cancelTimer = this.#timers.schedule(() => this.#onTimer(), Math.min(Math.max(0, due - this.#now()), MAX_TIMER_MS))
  }

  #dueAt (current: TokenSet): number {
    return Math.max(renewAt(current, this.#settings), this.#lastFetchAt + this.#minInterval, this.#nextAttemptAt)
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
    // Another process sharing the store may have renewed meanwhile: take its token, with no wait, lock or request.
    const renewed = await this.#storedRenewal()
    if (renewed !== undefined && this.#now() < usableUntil(renewed, this.#settings)) return this.#adopt(renewed)
    const wait = Math.min(this.#minInterval, this.#lastFetchAt + this.#minInterval - this.#now())
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait).unref())
    const previous = this.#current
    try {
      const { token, outcome } = await this.#obtainLocked()
      if (outcome === 'adopted') return this.#adopt(token)
      const refreshed = outcome === 'refreshed'
      // A fresh login after a token of a route in use is a renewal too; "obtained" is a
      // route's first token, or one after the route went cold or its token was refused.
      const event: keyof typeof TOKEN_EVENTS = refreshed ? 'token_refreshed' : previous === undefined || this.#cold || this.#refused ? 'token_obtained' : 'token_renewed'
      this.#install(token)
      // A static key is read from config: no token request was made.
      if (this.scheme.endpoint !== undefined) this.#onTokenRequest(refreshed ? 'refreshed' : 'obtained')
      this.#log.info({ event, expiresIn: secondsLeft(token, token.obtainedAt) }, TOKEN_EVENTS[event])
      return token
    } catch (err) {
      const error = err instanceof TokenError ? err : new TokenError('unavailable', (err as Error).message, { cause: err })
      this.#failures++
      this.#lastError = error
      this.#lastErrorAt = this.#now()
      if (error.cause !== LOCK_BUSY) this.#onTokenRequest(error.kind)
      this.#nextAttemptAt = this.#now() + this.#backoff(error)
      this.#log.warn({ event: 'token_failed', kind: error.kind, status: error.status, reason: error.message, retryInMs: Math.round(this.#nextAttemptAt - this.#now()) }, 'token request failed')
      throw error
    }
  }

  /** A static key is config, not state: only tokens from an endpoint go to the store. */
  get #persistent (): boolean {
    return this.scheme.endpoint !== undefined
  }

  /**
   * Renews under the store's lock (SPEC "Shared tokens"): reads the stored token
   * again and asks the token endpoint only if no other process renewed
   * meanwhile; the new token, with a rotated refresh token, is written before
   * the lock is let go, so the next holder presents the new refresh token and a
   * refresh token is never presented twice.
   */
  async #obtainLocked (): Promise<{ token: TokenSet, outcome: 'adopted' | 'obtained' | 'refreshed' }> {
    if (!this.#persistent) {
      const { token, refreshed } = await this.#obtain(this.#current)
      return { token, outcome: refreshed ? 'refreshed' : 'obtained' }
    }
    const lock = await this.#lock()
    if (lock === 'busy') {
      // Never present the refresh token without the lock: its holder may be spending it right now.
      // The caller keeps serving a token that has not expired; without one, this is TOKEN_UNAVAILABLE.
      const renewed = await this.#storedRenewal()
      if (renewed !== undefined && this.#now() < usableUntil(renewed, this.#settings)) return { token: renewed, outcome: 'adopted' }
      throw new TokenError('unavailable', `another process holds the token renewal lock (waited ${this.#tokenTimeoutMs} ms)`, { cause: LOCK_BUSY })
    }
    try {
      const renewed = await this.#storedRenewal()
      if (renewed !== undefined && this.#now() < usableUntil(renewed, this.#settings)) return { token: renewed, outcome: 'adopted' }
      // A newer stored token that is no longer usable still carries the live refresh token.
      const { token, refreshed } = await this.#obtain(renewed ?? this.#current)
      await this.#store.save(this.name, token).catch((err: unknown) => this.#storeFailed(err, 'could not store the token'))
      return { token, outcome: refreshed ? 'refreshed' : 'obtained' }
    } finally {
      await lock?.release().catch((err: unknown) => this.#storeFailed(err, 'could not release the token renewal lock; it ends with its lease'))
    }
  }

  /** The route's lock in the store; 'busy' when another holder kept it past the token timeout, undefined when the store cannot lock. */
  async #lock (): Promise<StoreLock | 'busy' | undefined> {
    try {
      return await this.#store.lock(this.name, { leaseMs: LOCK_LEASE_TIMEOUTS * this.#tokenTimeoutMs, waitMs: this.#tokenTimeoutMs }) ?? 'busy'
    } catch (err) {
      // The store cannot be used (an unwritable dir, Redis unreachable): renew alone, as without a store (SPEC "Shared tokens").
      this.#storeFailed(err, 'could not take the route\'s lock in the store; going on without it')
      return undefined
    }
  }

  /** The stored token, when it is newer than the one held: another process renewed it. */
  async #storedRenewal (): Promise<TokenSet | undefined> {
    if (!this.#persistent) return undefined
    let stored: TokenSet | undefined
    try {
      stored = await this.#store.load(this.name)
    } catch (err) {
      this.#storeFailed(err, 'could not read the stored token')
      return undefined
    }
    const held = this.#current
    return stored !== undefined && (held === undefined || stored.obtainedAt > held.obtainedAt) ? stored : undefined
  }

  /**
   * A store operation failed; the broker goes on without it. An outage the
   * store reports itself (logged once when it starts, counted in /metrics) is
   * only a debug line here, so an outage is not one warning per renewal.
   */
  #storeFailed (err: unknown, message: string): void {
    const level = err instanceof StoreUnavailableError ? 'debug' : 'warn'
    this.#log[level]({ event: 'token_store_failed', reason: (err as Error).message }, message)
  }

  /** `token` is the one served from now on: whatever failed before is over, and the route is in use. */
  #install (token: TokenSet): void {
    this.#cold = false
    this.#current = token
    this.#refused = false
    this.#failures = 0
    this.#nextAttemptAt = 0
    this.#lastError = undefined
    this.#lastRefreshAt = token.obtainedAt
  }

  /** Serves a token another process obtained and stored; no token request was made. */
  #adopt (token: TokenSet): TokenSet {
    this.#install(token)
    this.#log.info({ event: 'token_adopted', expiresIn: secondsLeft(token, this.#now()) }, 'token renewed by another process taken from the store')
    return token
  }

  /**
   * The upstream refused `used`: the store forgets it too, if it still holds
   * that very token (a newer one stays). Its refresh token is kept: the
   * upstream refused the access token, not the grant.
   */
  async #dropStored (used: TokenSet): Promise<void> {
    if (!this.#persistent) return
    const lock = await this.#lock()
    // Its holder is renewing: the stored token is being replaced anyway.
    if (lock === 'busy') return
    try {
      const stored = await this.#store.load(this.name)
      if (stored === undefined || stored.accessToken !== used.accessToken) return
      if (stored.refreshToken === undefined) await this.#store.delete(this.name)
      else await this.#store.save(this.name, { ...stored, expiresAt: Math.min(stored.expiresAt, this.#now()) })
    } finally {
      await lock?.release()
    }
  }

  /** Refresh token while one is held and valid; a refused refresh falls back to one fresh login. */
  async #obtain (previous: TokenSet | undefined): Promise<{ token: TokenSet, refreshed: boolean }> {
    const refresh = this.scheme.refresh
    const refreshToken = previous?.refreshToken
    if (refresh !== undefined && refreshToken !== undefined && (previous?.refreshExpiresAt === undefined || previous.refreshExpiresAt > this.#now())) {
      try {
        return { token: this.#date(await this.#call((signal) => refresh(refreshToken, signal)), previous), refreshed: true }
      } catch (err) {
        if (!(err instanceof TokenError && err.kind === 'rejected')) throw err
        this.#onTokenRequest('rejected')
        this.#log.info({ event: 'refresh_refused', reason: err.message }, 'refresh token refused; logging in again')
      }
    }
    return { token: this.#date(await this.#call((signal) => this.scheme.obtain(signal))), refreshed: false }
  }

  async #call (request: (signal: AbortSignal) => Promise<TokenResponse>): Promise<TokenResponse> {
    const now = this.#now()
    const waitMs = this.scheme.endpoint === undefined ? undefined : this.#budget?.take(now)
    if (waitMs !== undefined) {
      throw new TokenError('unavailable', `token request budget of ${this.#settings.maxRequestsPerMinute}/min for ${origin(this.scheme.endpoint as string)} is spent`, { retryAfterMs: waitMs })
    }
    this.#lastFetchAt = now
    return request(this.#abort.signal)
  }

  #date (response: TokenResponse, previous?: TokenSet): TokenSet {
    return datedToken(response, this.#now(), this.#settings.defaultTtl, previous)
  }

  #backoff (error: TokenError): number {
    const exp = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (this.#failures - 1))
    // "Equal jitter": at least half the step, so retries neither sync up nor come too fast.
    const jittered = exp / 2 + this.#random() * exp / 2
    return Math.max(jittered, Math.min(error.retryAfterMs ?? 0, RETRY_AFTER_MAX_MS))
  }

  #backoffError (now: number): TokenError {
    const last = this.#lastError as TokenError
    return new TokenError(last.kind, last.message, {
      ...(last.status === undefined ? {} : { status: last.status }),
      ...(last.oauthError === undefined ? {} : { oauthError: last.oauthError }),
      retryAfterMs: this.#nextAttemptAt - now
    })
  }
}

export function secondsLeft (token: TokenSet, now: number): number | null {
  return token.expiresAt === Infinity ? null : Math.round((token.expiresAt - now) / 1000)
}
