import type { TokenSet } from './token.js'

export interface LockOptions {
  /** A holder that died (or hangs) loses the lock this long after taking it. */
  leaseMs: number
  /** Longest wait for another holder to let go. */
  waitMs: number
}

/**
 * The store cannot be reached right now (a Redis outage). The store logs the
 * outage once, when it starts, and counts every failed operation, so callers
 * need not log each one: they go on without the store (SPEC "Shared tokens").
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError'
}

/** What `/routes` shows of a store: `ok`, or `unreachable` during an outage. */
export type StoreHealth = 'ok' | 'unreachable'

/** A held renewal lock; only its own holder can release it. */
export interface StoreLock {
  release (): Promise<void>
}

/**
 * Where the broker keeps tokens beyond its own memory, shared by every process
 * that uses the same store (SPEC "Shared tokens"). Entries are keyed by route
 * name; a store ties each entry to the route's auth settings, so a token
 * obtained with other credentials is never handed out.
 */
export interface TokenStore {
  load (route: string): Promise<TokenSet | undefined>
  save (route: string, token: TokenSet): Promise<void>
  delete (route: string): Promise<void>
  /**
   * Takes the route's renewal lock: whoever holds it is the only one to
   * present the route's refresh token, and writes the outcome before letting
   * go. Undefined when another holder kept it for all of `waitMs`; throws when
   * the store itself cannot be used.
   */
  lock (route: string, options: LockOptions): Promise<StoreLock | undefined>
  /** Whether the store can be used now; a store without one (memory, files) is always `ok`. */
  health? (): StoreHealth
}

/** Polling step while waiting for a lock held by someone else. */
const LOCK_POLL_MS = 10

/** The default: tokens live as long as the process. */
export class MemoryTokenStore implements TokenStore {
  readonly #tokens = new Map<string, TokenSet>()
  readonly #locks = new Map<string, { expiresAt: number }>()

  async load (key: string): Promise<TokenSet | undefined> {
    return this.#tokens.get(key)
  }

  async save (key: string, token: TokenSet): Promise<void> {
    this.#tokens.set(key, token)
  }

  async delete (key: string): Promise<void> {
    this.#tokens.delete(key)
  }

  async lock (key: string, options: LockOptions): Promise<StoreLock | undefined> {
    const deadline = Date.now() + options.waitMs
    for (;;) {
      const held = this.#locks.get(key)
      if (held === undefined || held.expiresAt <= Date.now()) {
        const mine = { expiresAt: Date.now() + options.leaseMs }
        this.#locks.set(key, mine)
        return {
          release: async () => {
            if (this.#locks.get(key) === mine) this.#locks.delete(key)
          }
        }
      }
      const left = deadline - Date.now()
      if (left <= 0) return undefined
      await new Promise((resolve) => setTimeout(resolve, Math.min(LOCK_POLL_MS, left)))
    }
  }
}
