import { createHash, randomBytes } from 'node:crypto'
import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from 'pino'
import { deriveStateKeys, keyOfStateKey, openEntry, sealEntry, settingsHash, STORE_SECRET_BYTES, type StateKeys } from './state-keys.js'
import { sendableInHeader, type TokenSet } from './token.js'
import { StoreUnavailableError, type LockOptions, type StoreHealth, type StoreLock, type TokenStore } from './token-store.js'

/**
 * Static stability: a Redis that is down or hangs costs a request a bounded
 * wait, never more. A command that gets no answer fails after
 * COMMAND_TIMEOUT_MS; a connection that stays silent that long with commands
 * pending is dropped after SOCKET_TIMEOUT_MS, and from then on commands fail
 * at once (no offline queue) until it is back. So a renewal waits on the
 * store about a second at worst, once per outage.
 */
export const COMMAND_TIMEOUT_MS = 500
const SOCKET_TIMEOUT_MS = 1000
const CONNECT_TIMEOUT_MS = 1000
/** Reconnection attempts are at most this far apart, so a returning Redis is used again within seconds. */
const MAX_RECONNECT_DELAY_MS = 1000
/** Polling steps while another process holds a route's lock: short at first, then every 100 ms. */
const FIRST_POLL_MS = 5
const MAX_POLL_MS = 100
/** The lock taken to write a token back after an outage: only for a load and a save. */
const WRITE_BACK_LEASE_MS = 5000
const FORMAT = 1
/**
 * Compare-and-delete: the lock goes only if it still holds the releaser's own
 * value. Past its lease another process may have taken it; that one is kept.
 */
const RELEASE_LOCK_LUA = `if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0`

interface ScriptedRedis extends Redis {
  releaseLock (key: string, owner: string): Promise<number>
}

/** Where a Redis store is (SPEC "Shared tokens"); the config's `store` of type `redis` matches it. */
export interface RedisStoreConfig {
  type: 'redis'
  /** May carry a user and password: a secret, never logged or shown. */
  url: string
  /** Every key the store writes starts with it. */
  keyPrefix: string
}

/** What each store operation is counted as in `bearer_proxy_store_errors_total`. */
export type StoreOperation = 'connect' | 'load' | 'save' | 'delete' | 'lock' | 'unlock' | 'secret'

/** ioredis connection options from a validated `store.url` (see `redisUrlIssue`), credentials decoded. */
export function redisConnectionOptions (url: string): RedisOptions {
  const parsed = new URL(url)
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1')
  const db = parsed.pathname.replace(/^\//, '')
  return {
    host,
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    ...(db === '' ? {} : { db: Number(db) }),
    ...(parsed.username === '' ? {} : { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }),
    // rediss: TLS with Node's defaults: the server certificate is verified against the host.
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {})
  }
}

export interface RedisConnectionOptions {
  store: RedisStoreConfig
  logger: Logger
  /** Told about every failed operation and connection attempt (metrics). */
  onError?: (operation: StoreOperation) => void
}

/** A use of the shared connection: the last one released closes it. Releasing twice is harmless. */
export interface RedisLease {
  readonly connection: RedisConnection
  release (): Promise<void>
}

interface WriteBack {
  obtainedAt: number
  run: () => Promise<void>
}

/**
 * One Redis client per process, shared by every config a reload brings as
 * long as the store's URL and prefix stay the same. It knows whether Redis
 * can be used: an outage is logged once when it starts and once when it
 * ends, and when Redis returns the tokens this process holds are written back
 * (Redis may have lost them, or others may have renewed without it).
 */
export class RedisConnection {
  readonly keyPrefix: string
  readonly #url: string
  readonly #client: ScriptedRedis
  readonly #log: Logger
  readonly #onError: (operation: StoreOperation) => void
  readonly #credentials: string[]
  #health: StoreHealth = 'ok'
  #downSince = 0
  #leases = 0
  #closed = false
  /** Until the first connection attempt ends, operations wait for it (bounded): the client starts connecting when made. */
  #firstConnect: Promise<void> | undefined
  #secret: Buffer | undefined
  #secretLoading: Promise<Buffer> | undefined
  /** Per route and auth settings (in memory only), how to write back the newest token this process has seen. */
  readonly #writeBacks = new Map<string, WriteBack>()
  #writingBack: Promise<void> | undefined
  #writeBackAgain = false
  /**
   * Locks whose SET or release got no answer: Redis may still have run it
   * (a hung server runs what it had received when it wakes), so such a lock
   * may be ours though we gave it up. Released (by their owner value, so
   * never someone else's) as soon as Redis is back, rather than left to
   * block every process until their lease ends.
   */
  readonly #unsure = new Map<string, { key: string, owner: string }>()

  constructor (options: RedisConnectionOptions) {
    this.keyPrefix = options.store.keyPrefix
    this.#url = options.store.url
    this.#onError = options.onError ?? (() => {})
    const connection = redisConnectionOptions(this.#url)
    this.#credentials = [connection.password, connection.username].filter((v): v is string => v !== undefined && v.length >= 4)
    this.#log = options.logger.child({ component: 'store', store: 'redis', address: `${connection.host ?? ''}:${connection.port ?? 6379}/${connection.db ?? 0}` })
    this.#client = new Redis({
      ...connection,
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: COMMAND_TIMEOUT_MS,
      socketTimeout: SOCKET_TIMEOUT_MS,
      // Fail at once while disconnected rather than queue: a request never waits for Redis to return.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times) => Math.min(times * 100, MAX_RECONNECT_DELAY_MS)
    }) as ScriptedRedis
    this.#client.defineCommand('releaseLock', { numberOfKeys: 1, lua: RELEASE_LOCK_LUA })
    // An 'error' listener is required: without one ioredis prints every failed reconnection.
    this.#client.on('error', (err: Error) => {
      this.#onError('connect')
      this.#down(err)
    })
    this.#client.on('close', () => this.#down(new Error('connection closed')))
    this.#client.on('ready', () => this.#up())
    this.#firstConnect = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, CONNECT_TIMEOUT_MS + 100)
      timer.unref()
      const done = (): void => {
        clearTimeout(timer)
        resolve()
      }
      this.#client.once('ready', done)
      this.#client.once('error', done)
      this.#client.once('close', done)
    }).then(() => { this.#firstConnect = undefined })
  }

  get health (): StoreHealth {
    return this.#health
  }

  /** Whether this connection is the one `store` asks for, so a reload may keep it. */
  serves (store: RedisStoreConfig): boolean {
    return !this.#closed && store.url === this.#url && store.keyPrefix === this.keyPrefix
  }

  acquire (): RedisLease {
    this.#leases++
    let released = false
    return {
      connection: this,
      release: async () => {
        if (released) return
        released = true
        if (--this.#leases === 0) await this.#close()
      }
    }
  }

  /**
   * Runs one command. Every failure (refused, timed out, disconnected, an
   * error reply) becomes a StoreUnavailableError, is counted, and starts an
   * outage if none is on; a success while one is on ends it.
   */
  async run<T>(operation: StoreOperation, command: (client: ScriptedRedis) => Promise<T>): Promise<T> {
    if (this.#firstConnect !== undefined) await this.#firstConnect
    let result: T
    try {
      result = await command(this.#client)
    } catch (err) {
      this.#onError(operation)
      this.#down(err as Error)
      throw new StoreUnavailableError(`redis ${operation} failed: ${this.#reason(err as Error)}`, { cause: err })
    }
    // A Redis that hung and answers again on the same connection: no 'ready' event tells.
    if (this.#health === 'unreachable' && this.#client.status === 'ready') this.#up()
    return result
  }

  /**
   * The store's own random secret, kept in Redis under `<keyPrefix>secret`
   * (no expiry): created once with SET NX, so every process agrees on it.
   * It keys the hash in entry names when there is no stateKey, and salts a
   * stateKey passphrase. Read once per process and held.
   */
  async secret (): Promise<Buffer> {
    if (this.#secret !== undefined) return this.#secret
    this.#secretLoading ??= this.run('secret', async (client) => {
      await client.set(this.#secretKey, randomBytes(STORE_SECRET_BYTES), 'NX')
      return checkedSecret(await client.getBuffer(this.#secretKey), this.#secretKey)
    }).then((value) => {
      this.#secret = value
      return value
    }).finally(() => { this.#secretLoading = undefined })
    return this.#secretLoading
  }

  /** The newest token this process holds for an entry: written back when Redis returns from an outage. */
  remember (id: string, token: TokenSet, run: () => Promise<void>): void {
    const known = this.#writeBacks.get(id)
    if (known === undefined || token.obtainedAt >= known.obtainedAt) this.#writeBacks.set(id, { obtainedAt: token.obtainedAt, run })
  }

  forget (id: string): void {
    this.#writeBacks.delete(id)
  }

  /** A lock `owner` may hold on `key` without knowing it (see #unsure). */
  unsureLock (key: string, owner: string): void {
    this.#unsure.set(`${key}\n${owner}`, { key, owner })
  }

  get #secretKey (): string {
    return `${this.keyPrefix}secret`
  }

  #down (err: Error): void {
    if (this.#closed || this.#health === 'unreachable') return
    this.#health = 'unreachable'
    this.#downSince = Date.now()
    this.#log.warn({ event: 'store_unreachable', reason: this.#reason(err) }, 'token store unreachable: each process serves and renews its tokens on its own until it returns')
  }

  #up (): void {
    if (this.#closed || this.#health === 'ok') return
    this.#health = 'ok'
    this.#log.info({ event: 'store_recovered', downMs: Date.now() - this.#downSince }, 'token store reachable again; writing back the tokens held')
    this.#writeBack()
  }

  /** One write-back at a time; one more if Redis came back again meanwhile. */
  #writeBack (): void {
    if (this.#writingBack !== undefined) {
      this.#writeBackAgain = true
      return
    }
    this.#writingBack = (async () => {
      for (const [id, { key, owner }] of [...this.#unsure]) {
        await this.run('unlock', (client) => client.releaseLock(key, owner))
        this.#unsure.delete(id)
      }
      await this.#restoreSecret()
      for (const [id, entry] of [...this.#writeBacks]) {
        if (this.#writeBacks.get(id) === entry) await entry.run()
      }
    })().catch(() => {
      // Redis went away again: counted and logged by run(); the next return writes back again.
    }).finally(() => {
      this.#writingBack = undefined
      if (this.#writeBackAgain && !this.#closed) {
        this.#writeBackAgain = false
        this.#writeBack()
      }
    })
  }

  /**
   * A Redis that lost its data lost the secret too. The one this process
   * holds is put back (SET NX: unless another process did first), and the
   * one Redis holds now is the one used from here on, so processes started
   * after the loss and those started before agree again.
   */
  async #restoreSecret (): Promise<void> {
    const held = this.#secret
    if (held === undefined) return
    this.#secret = await this.run('secret', async (client) => {
      await client.set(this.#secretKey, held, 'NX')
      const value = checkedSecret(await client.getBuffer(this.#secretKey), this.#secretKey)
      return value.equals(held) ? held : value
    })
  }

  /** An error's message without the URL's user or password, should a driver ever echo them. */
  #reason (err: Error): string {
    let message = err.message
    for (const value of this.#credentials) message = message.split(value).join('[redacted]')
    return message
  }

  async #close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#client.status !== 'ready') {
      this.#client.disconnect()
      return
    }
    try {
      await this.#client.quit()
    } catch {
      this.#client.disconnect()
    }
  }
}

function checkedSecret (value: Buffer | null, key: string): Buffer {
  if (value === null || value.length !== STORE_SECRET_BYTES) throw new Error(`${key} is not a ${STORE_SECRET_BYTES}-byte secret`)
  return value
}

interface StoredEntry {
  format: number
  route: string
  /** Keyed hash of the route's auth settings, as in the key's name: an entry moved to another key is not used. */
  hash: string
  token: TokenSet
}

export interface RedisTokenStoreOptions {
  connection: RedisConnection
  /** Per route name, its resolved auth settings (after secret references). */
  settings: Map<string, unknown>
  logger: Logger
  /** stateKey: encrypts entries (JWE dir + A256GCM); a key, or a passphrase (see state-keys.ts). */
  key?: string | undefined
}

/**
 * Tokens in Redis, shared by every process that uses it (SPEC "Shared
 * tokens"). A route's entry is `<keyPrefix><route>:<hash>`, where the hash is
 * an HMAC of the route's resolved auth settings, so other credentials never
 * find it; its lock is the same name plus `:lock`. An entry is JSON (a JWE of
 * it with stateKey) and expires with what it holds: the access token, or a
 * refresh token's known expiry; one whose refresh token has no known expiry
 * never does, since losing it would lose the grant.
 */
export class RedisTokenStore implements TokenStore {
  readonly #connection: RedisConnection
  readonly #settings: Map<string, unknown>
  readonly #log: Logger
  readonly #stateKey: string | undefined
  /** A stateKey that is a key needs no secret from Redis: its keys are derived once. */
  readonly #selfKeyed: boolean
  #keys: Promise<StateKeys> | undefined
  /** The Redis secret `#keys` was derived from. */
  #keysSecret: Buffer | undefined
  /** Per route, the last entry warned about: the same entry read again is not warned about twice. */
  readonly #warned = new Map<string, string>()

  constructor (options: RedisTokenStoreOptions) {
    this.#connection = options.connection
    this.#settings = options.settings
    this.#log = options.logger
    this.#stateKey = options.key
    this.#selfKeyed = options.key !== undefined && keyOfStateKey(options.key) !== undefined
  }

  health (): StoreHealth {
    return this.#connection.health
  }

  async load (route: string): Promise<TokenSet | undefined> {
    const { key, hash, keys } = await this.#entry(route)
    const text = await this.#connection.run('load', (client) => client.get(key))
    if (text === null) return undefined
    let stored: StoredEntry
    try {
      stored = JSON.parse(await openEntry(text, keys.encryption)) as StoredEntry
      if (stored.format !== FORMAT || stored.route !== route || stored.hash !== hash || typeof stored.token?.accessToken !== 'string' || !sendableInHeader(stored.token.accessToken)) throw new Error('not a token entry')
    } catch {
      this.#warn(route, keys.encryption === undefined ? 'corrupt' : 'corrupt or encrypted with another key', text)
      return undefined
    }
    this.#warned.delete(route)
    // JSON has no Infinity: "never expires" is stored as null.
    const token = { ...stored.token, expiresAt: stored.token.expiresAt ?? Infinity }
    this.#remember(route, token)
    return token
  }

  async save (route: string, token: TokenSet): Promise<void> {
    // Remembered first: a token that could not be written is written back when Redis returns.
    this.#remember(route, token)
    const { key, hash, keys } = await this.#entry(route)
    const ttl = entryTtl(token, Date.now())
    if (ttl !== undefined && ttl <= 0) {
      await this.#connection.run('save', (client) => client.del(key))
      return
    }
    const value = await sealEntry(JSON.stringify({ format: FORMAT, route, hash, token } satisfies StoredEntry), keys.encryption)
    await this.#connection.run('save', (client) => ttl === undefined ? client.set(key, value) : client.set(key, value, 'PX', ttl))
  }

  async delete (route: string): Promise<void> {
    this.#connection.forget(this.#writeBackId(route))
    const { key } = await this.#entry(route)
    await this.#connection.run('delete', (client) => client.del(key))
  }

  /**
   * `SET <entry>:lock <owner> NX PX <lease>`: exactly one process gets it; a
   * holder that died loses it when the lease ends. Another holder is polled
   * for with a short backoff, never past `waitMs`. Throws when Redis cannot
   * be used, so the broker renews on its own.
   */
  async lock (route: string, options: LockOptions): Promise<StoreLock | undefined> {
    const key = `${(await this.#entry(route)).key}:lock`
    const owner = `${process.pid}:${randomBytes(16).toString('hex')}`
    const leaseMs = Math.max(1, Math.ceil(options.leaseMs))
    const deadline = Date.now() + options.waitMs
    let pause = FIRST_POLL_MS
    // Bounded by the deadline; the count bound guards against a clock that stands still.
    for (let attempt = 0; attempt < 100_000; attempt++) {
      const taken = await this.#connection.run('lock', (client) => client.set(key, owner, 'PX', leaseMs, 'NX')).catch((err: unknown) => {
        // No answer is no proof it was not taken.
        this.#connection.unsureLock(key, owner)
        throw err
      })
      if (taken === 'OK') return new RedisLock(this.#connection, key, owner)
      const left = deadline - Date.now()
      if (left <= 0) return undefined
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)))
      pause = Math.min(pause * 2, MAX_POLL_MS)
    }
    return undefined
  }

  /** The route's entry name and keys. */
  async #entry (route: string): Promise<{ key: string, hash: string, keys: StateKeys }> {
    const keys = await this.#stateKeys()
    const hash = settingsHash(keys.hash, this.#settings.get(route) ?? null)
    return { key: `${this.#connection.keyPrefix}${route}:${hash}`, hash, keys }
  }

  /** Derived once per secret (a passphrase costs a key derivation); a failure is tried again next time. */
  async #stateKeys (): Promise<StateKeys> {
    if (this.#selfKeyed) {
      this.#keys ??= deriveStateKeys(this.#stateKey, () => Promise.reject(new Error('no secret needed')))
      return this.#keys
    }
    const secret = await this.#connection.secret()
    if (this.#keys === undefined || this.#keysSecret !== secret) {
      this.#keysSecret = secret
      this.#keys = deriveStateKeys(this.#stateKey, async () => secret).catch((err: unknown) => {
        this.#keys = undefined
        throw err
      })
    }
    return this.#keys
  }

  /**
   * In memory only, so it needs no Redis: the route and what its entry
   * depends on. Another store made by a reload for the same settings shares
   * the write-back of its token.
   */
  #writeBackId (route: string): string {
    return `${route}\n${createHash('sha256').update(JSON.stringify({ settings: this.#settings.get(route) ?? null, key: this.#stateKey ?? null })).digest('hex')}`
  }

  #remember (route: string, token: TokenSet): void {
    const id = this.#writeBackId(route)
    this.#connection.remember(id, token, async () => {
      if (!alive(token, Date.now())) {
        this.#connection.forget(id)
        return
      }
      // Someone renewing right now writes a newer token anyway.
      const lock = await this.lock(route, { leaseMs: WRITE_BACK_LEASE_MS, waitMs: 0 })
      if (lock === undefined) return
      try {
        const stored = await this.load(route)
        if (stored !== undefined && stored.obtainedAt >= token.obtainedAt) return
        await this.save(route, token)
        this.#log.info({ event: 'token_written_back', route }, 'token written back to the store')
      } finally {
        await lock.release()
      }
    })
  }

  /** Warns once per entry (identified by its text's digest): the broker reads the store again at each renewal. */
  #warn (route: string, reason: string, text: string): void {
    const seen = `${reason}\n${createHash('sha256').update(text).digest('base64')}`
    if (this.#warned.get(route) === seen) return
    this.#warned.set(route, seen)
    this.#log.warn({ event: 'stored_token_ignored', route, reason }, 'stored token ignored')
  }
}

class RedisLock implements StoreLock {
  readonly #connection: RedisConnection
  readonly #key: string
  readonly #owner: string
  #released = false

  constructor (connection: RedisConnection, key: string, owner: string) {
    this.#connection = connection
    this.#key = key
    this.#owner = owner
  }

  async release (): Promise<void> {
    if (this.#released) return
    this.#released = true
    await this.#connection.run('unlock', (client) => client.releaseLock(this.#key, this.#owner)).catch((err: unknown) => {
      this.#connection.unsureLock(this.#key, this.#owner)
      throw err
    })
  }
}

/** Whether a token can still serve: its access token, or a refresh token, has not expired. */
function alive (token: TokenSet, now: number): boolean {
  return token.expiresAt > now || (token.refreshToken !== undefined && (token.refreshExpiresAt === undefined || token.refreshExpiresAt > now))
}

/** Milliseconds an entry is worth keeping; undefined for ever (a refresh token of unknown expiry). */
function entryTtl (token: TokenSet, now: number): number | undefined {
  const until = token.refreshToken === undefined ? token.expiresAt : Math.max(token.expiresAt, token.refreshExpiresAt ?? Infinity)
  return until === Infinity ? undefined : Math.ceil(until - now)
}
