import type { Logger } from 'pino'
import { usableUntil, type Margins } from './renewal-policy.js'
import type { TokenSet } from './token.js'
import { TokenError } from './token-error.js'
import { StoreUnavailableError, type StoreLock, type TokenStore } from './token-store.js'

/** The token request timeout of schemes that do not say (SPEC "Shared tokens": `auth.timeout`, default 10 s). */
export const DEFAULT_TOKEN_TIMEOUT_MS = 10_000
/** A renewal lock's lease, in token timeouts: long enough for a refresh, its fallback login and the write. */
const LOCK_LEASE_TIMEOUTS = 3
/** Marks a renewal that failed because another process kept the lock: no token request was made. */
const LOCK_BUSY = Symbol('lock busy')

/** Whether `error` only says another process kept the renewal lock: no token request was made. */
export function lockBusy (error: TokenError): boolean {
  return error.cause === LOCK_BUSY
}

/** `adopted`: another process renewed and stored the token, taken as it is; no token request was made. */
export type RenewalOutcome = 'adopted' | 'obtained' | 'refreshed'

/** Asks the token endpoint, with `previous`'s refresh token when it has a live one. */
export type Obtain = (previous: TokenSet | undefined) => Promise<{ token: TokenSet, refreshed: boolean }>

export interface SharedRenewalOptions {
  /** Route name: the store key. */
  route: string
  store: TokenStore
  /** Whether the route's tokens go to the store: a static key is config, not state. */
  persistent: boolean
  /** The route's token request timeout, ms: the longest wait for the renewal lock. */
  tokenTimeoutMs: number
  margins: Margins
  now: () => number
  logger: Logger
  /** The token the broker holds at this moment. */
  held: () => TokenSet | undefined
}

/**
 * One route's renewals through a store shared with other processes (SPEC
 * "Shared tokens"): the stored token is read again before each renewal and
 * taken when another process renewed meanwhile; a renewal runs under the
 * route's lock and writes its token back before the lock is let go; a token
 * the upstream refused, or one forgotten, is dropped from the store too. A
 * store that cannot be used is logged and gone on without: the broker then
 * obtains tokens alone.
 */
export class SharedRenewal {
  readonly #route: string
  readonly #store: TokenStore
  readonly #persistent: boolean
  readonly #tokenTimeoutMs: number
  readonly #margins: Margins
  readonly #now: () => number
  readonly #log: Logger
  readonly #held: () => TokenSet | undefined

  constructor (options: SharedRenewalOptions) {
    this.#route = options.route
    this.#store = options.store
    this.#persistent = options.persistent
    this.#tokenTimeoutMs = options.tokenTimeoutMs
    this.#margins = options.margins
    this.#now = options.now
    this.#log = options.logger
    this.#held = options.held
  }

  /** The stored token; undefined when there is none or the store cannot be read (logged). */
  async load (): Promise<TokenSet | undefined> {
    if (!this.#persistent) return undefined
    try {
      return await this.#store.load(this.#route)
    } catch (err) {
      // The store unreachable, or unusable (a state dir opened up to other users): serve anyway,
      // obtaining tokens alone (SPEC "Shared tokens").
      this.failed(err, 'could not read the stored token')
      return undefined
    }
  }

  /** The stored token, when it is newer than the one held: another process renewed it. */
  async newer (): Promise<TokenSet | undefined> {
    const stored = await this.load()
    const held = this.#held()
    return stored !== undefined && (held === undefined || stored.obtainedAt > held.obtainedAt) ? stored : undefined
  }

  /** A token another process renewed that is good to send now: taken with no wait, lock or request. */
  async usableNewer (): Promise<TokenSet | undefined> {
    const renewed = await this.newer()
    return renewed !== undefined && this.#usable(renewed) ? renewed : undefined
  }

  /**
   * Renews under the store's lock: reads the stored token again and asks the
   * token endpoint (`obtain`) only if no other process renewed meanwhile; the
   * new token, with a rotated refresh token, is written before the lock is
   * let go, so the next holder presents the new refresh token and a refresh
   * token is never presented twice.
   */
  async renew (obtain: Obtain): Promise<{ token: TokenSet, outcome: RenewalOutcome }> {
    if (!this.#persistent) {
      const { token, refreshed } = await obtain(this.#held())
      return { token, outcome: refreshed ? 'refreshed' : 'obtained' }
    }
    const lock = await this.#lock()
    if (lock === 'busy') {
      // Never present the refresh token without the lock: its holder may be spending it right now.
      // The caller keeps serving a token that has not expired; without one, this is TOKEN_UNAVAILABLE.
      const renewed = await this.usableNewer()
      if (renewed !== undefined) return { token: renewed, outcome: 'adopted' }
      throw new TokenError('unavailable', `another process holds the token renewal lock (waited ${this.#tokenTimeoutMs} ms)`, { cause: LOCK_BUSY })
    }
    try {
      const renewed = await this.newer()
      if (renewed !== undefined && this.#usable(renewed)) return { token: renewed, outcome: 'adopted' }
      // A newer stored token that is no longer usable still carries the live refresh token.
      const { token, refreshed } = await obtain(renewed ?? this.#held())
      await this.#store.save(this.#route, token).catch((err: unknown) => this.failed(err, 'could not store the token'))
      return { token, outcome: refreshed ? 'refreshed' : 'obtained' }
    } finally {
      await lock?.release().catch((err: unknown) => this.failed(err, 'could not release the token renewal lock; it ends with its lease'))
    }
  }

  /**
   * Writes the tokens of a person's login (`bearer-proxy login`) under the
   * route's lock, so no renewal in another process is half-way through its
   * refresh when they land. Throws when they cannot be stored: a login that
   * is not kept is no login.
   */
  async saveLogin (token: TokenSet): Promise<void> {
    const lock = await this.#lock()
    if (lock === 'busy') throw new Error(`another process holds the route's token renewal lock (waited ${this.#tokenTimeoutMs} ms); run login again`)
    try {
      await this.#store.save(this.#route, token)
    } finally {
      await lock?.release().catch((err: unknown) => this.failed(err, 'could not release the token renewal lock; it ends with its lease'))
    }
  }

  /**
   * A user login's refresh token was refused: the stored entry goes if it
   * still holds that refresh token, so no process presents it again. Called
   * from inside `renew`'s `obtain`, under the route's lock already.
   */
  async forgetRefreshToken (refreshToken: string): Promise<void> {
    if (!this.#persistent) return
    try {
      const stored = await this.#store.load(this.#route)
      if (stored?.refreshToken === refreshToken) await this.#store.delete(this.#route)
    } catch (err) {
      this.failed(err, 'could not drop the refused login from the store')
    }
  }

  /**
   * The upstream refused `used`: the store forgets it too, if it still holds
   * that very token (a newer one stays). Its refresh token is kept: the
   * upstream refused the access token, not the grant. Runs on its own; a
   * failure is logged.
   */
  dropRefused (used: TokenSet): void {
    this.#dropRefused(used).catch((err: unknown) => this.failed(err, 'could not drop the refused token from the store'))
  }

  /**
   * Deletes the route's stored token under the store's lock, and calls
   * `forgotten` before the lock is let go, so no renewal writes back or adopts
   * the forgotten token afterwards. Throws when the entry cannot be deleted.
   */
  async forget (forgotten: () => void): Promise<void> {
    const lock = this.#persistent ? await this.#lock() : undefined
    try {
      // Forgotten also when another process keeps the lock: its renewal writes a new token, not this one.
      if (this.#persistent) await this.#store.delete(this.#route)
      forgotten()
    } finally {
      if (lock !== undefined && lock !== 'busy') await lock.release()
    }
  }

  /**
   * A store operation failed; the broker goes on without it. An outage the
   * store reports itself (logged once when it starts, counted in /metrics) is
   * only a debug line here, so an outage is not one warning per renewal.
   */
  failed (err: unknown, message: string): void {
    const level = err instanceof StoreUnavailableError ? 'debug' : 'warn'
    this.#log[level]({ event: 'token_store_failed', reason: (err as Error).message }, message)
  }

  #usable (token: TokenSet): boolean {
    return this.#now() < usableUntil(token, this.#margins)
  }

  /** The route's lock in the store; 'busy' when another holder kept it past the token timeout, undefined when the store cannot lock. */
  async #lock (): Promise<StoreLock | 'busy' | undefined> {
    try {
      return await this.#store.lock(this.#route, { leaseMs: LOCK_LEASE_TIMEOUTS * this.#tokenTimeoutMs, waitMs: this.#tokenTimeoutMs }) ?? 'busy'
    } catch (err) {
      // The store cannot be used (an unwritable dir, Redis unreachable): renew alone, as without a store (SPEC "Shared tokens").
      this.failed(err, 'could not take the route\'s lock in the store; going on without it')
      return undefined
    }
  }

  async #dropRefused (used: TokenSet): Promise<void> {
    if (!this.#persistent) return
    const lock = await this.#lock()
    // Its holder is renewing: the stored token is being replaced anyway.
    if (lock === 'busy') return
    try {
      const stored = await this.#store.load(this.#route)
      if (stored === undefined || stored.accessToken !== used.accessToken) return
      if (stored.refreshToken === undefined) await this.#store.delete(this.#route)
      else await this.#store.save(this.#route, { ...stored, expiresAt: Math.min(stored.expiresAt, this.#now()) })
    } finally {
      await lock?.release()
    }
  }
}
