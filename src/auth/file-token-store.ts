import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { compactDecrypt } from 'jose'
import type { Logger } from 'pino'
import { acquireFileLock } from './file-lock.js'
import { chmod, lstat, readdir, rename, rm, writeFile } from './fs-async.js'
import { NotRegularFileError, openStateDir, readStateFile } from './state-dir.js'
import { openEntry, sealEntry, settingsHash, stateKeys, type StateKeys } from './state-keys.js'
import { sendableInHeader, type TokenSet } from './token.js'
import type { LockOptions, StoreLock, TokenStore } from './token-store.js'

const FORMAT = 2
/** Files of the first format: an unsalted SHA-256 of the auth block, a key that was SHA-256 of stateKey. */
const LEGACY_FORMAT = 1
/**
 * Hex digits of the keyed settings hash in file names: 64 bits, so two sets
 * of credentials never meet by chance (the whole hash inside is checked too).
 */
const NAME_HASH_DIGITS = 16

interface StoredFile {
  format: number
  route: string
  /** Keyed hash of the route's auth settings: a file written for other credentials is not used. */
  hash: string
  token: TokenSet
}

export interface FileTokenStoreOptions {
  dir: string
  /** Per route name, its resolved auth settings (after secret references). */
  settings: Map<string, unknown>
  logger: Logger
  /** stateKey: encrypts files at rest (JWE dir + A256GCM); a key, or a passphrase (see state-keys.ts). */
  key?: string | undefined
}

/** `<route>.<hash>.token.json`: a route's token under one set of auth settings (the hash from `settingsHash`). */
export function tokenFileName (route: string, hash: string): string {
  return `${route}.${hash.slice(0, NAME_HASH_DIGITS)}.token.json`
}

/** `<route>.<hash>.token.lock`: the renewal lock of that token; other credentials have another. */
export function lockFileName (route: string, hash: string): string {
  return `${route}.${hash.slice(0, NAME_HASH_DIGITS)}.token.lock`
}

/** What earlier versions named a route's file, whatever its settings; still read, then replaced. */
function legacyFileName (route: string): string {
  return `${route}.token.json`
}

/**
 * Tokens persisted as one file per route and set of auth settings,
 * `<route>.<hash>.token.json` (mode 0600, written to a temp file and renamed,
 * so a crash never leaves half a file), so a restart neither spends the token
 * budget nor loses a refresh token the provider has already rotated, and every
 * process using the dir shares them (a renewal runs under
 * `<route>.<hash>.token.lock`). Two configs that give one route name other
 * credentials keep apart: each has its own file and lock. A file that is
 * corrupt, from other credentials or unreadable with the key is ignored with a
 * warning. The dir is checked at every use (see openStateDir).
 */
export class FileTokenStore implements TokenStore {
  readonly #dir: string
  readonly #settings: Map<string, unknown>
  readonly #log: Logger
  readonly #stateKey: string | undefined
  #keys: Promise<StateKeys> | undefined
  /** Per route, the last file warned about: the same file read again is not warned about twice. */
  readonly #warned = new Map<string, string>()

  constructor (options: FileTokenStoreOptions) {
    this.#dir = options.dir
    this.#settings = options.settings
    this.#log = options.logger
    this.#stateKey = options.key
  }

  async load (route: string): Promise<TokenSet | undefined> {
    await openStateDir(this.#dir)
    let keys: StateKeys
    try {
      keys = await this.#stateKeys()
    } catch (err) {
      const reason = `no state key: ${(err as Error).message}`
      this.#warn(route, reason, reason)
      return undefined
    }
    const own = await this.#read(route, this.#hash(route, keys).file)
    if (own !== undefined) return this.#parse(route, own, keys, true)
    // Not written under its own name yet: a file of an earlier version, named by the route alone,
    // is used when written for these settings (so an upgrade keeps a rotated refresh token).
    const legacy = await this.#read(route, legacyFileName(route))
    if (legacy !== undefined) return this.#parse(route, legacy, keys, true)
    await this.#reportOthers(route, keys)
    return undefined
  }

  async save (route: string, token: TokenSet): Promise<void> {
    await openStateDir(this.#dir)
    const keys = await this.#stateKeys()
    const { hash, file } = this.#hash(route, keys)
    const stored: StoredFile = { format: FORMAT, route, hash, token }
    const json = JSON.stringify(stored)
    const text = await sealEntry(json, keys.encryption)
    const path = join(this.#dir, file)
    const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`
    try {
      // wx: a name planted in advance (a link) is refused, not followed.
      await writeFile(temp, text, { mode: 0o600, flag: 'wx' })
      await chmod(temp, 0o600)
      await rename(temp, path)
    } catch (err) {
      await rm(temp, { force: true })
      throw err
    }
    await this.#dropLegacy(route, keys)
  }

  async delete (route: string): Promise<void> {
    await openStateDir(this.#dir)
    const keys = await this.#stateKeys()
    await rm(join(this.#dir, this.#hash(route, keys).file), { force: true })
    // Else load would fall back to it and serve the token just dropped.
    await this.#dropLegacy(route, keys)
  }

  async lock (route: string, options: LockOptions): Promise<StoreLock | undefined> {
    await openStateDir(this.#dir)
    const keys = await this.#stateKeys()
    return acquireFileLock(join(this.#dir, this.#hash(route, keys).lock), options)
  }

  /** The route's keyed settings hash and the names it gives its token and lock files. */
  #hash (route: string, keys: StateKeys): { hash: string, file: string, lock: string } {
    const hash = settingsHash(keys.hash, this.#settings.get(route) ?? null)
    return { hash, file: tokenFileName(route, hash), lock: lockFileName(route, hash) }
  }

  /** A file's text; undefined when there is none, or (with a warning) when it cannot be read. */
  async #read (route: string, name: string): Promise<string | undefined> {
    try {
      return (await readStateFile(join(this.#dir, name))).data.toString('utf8')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return undefined
      const reason = err instanceof NotRegularFileError ? 'not a regular file' : `cannot read: ${code ?? 'error'}`
      this.#warn(route, reason, name)
      return undefined
    }
  }

  /** The token a file holds, if it is a token file for this route and its current settings; warns otherwise. */
  async #parse (route: string, text: string, keys: StateKeys, warn: boolean): Promise<TokenSet | undefined> {
    let stored: StoredFile
    try {
      stored = JSON.parse(await this.#decrypt(text, keys)) as StoredFile
      if ((stored.format !== FORMAT && stored.format !== LEGACY_FORMAT) || stored.route !== route || typeof stored.token?.accessToken !== 'string' || !sendableInHeader(stored.token.accessToken)) throw new Error('not a token file')
    } catch {
      if (warn) this.#warn(route, keys.encryption === undefined ? 'corrupt' : 'corrupt or encrypted with another key', text)
      return undefined
    }
    if (!this.#sameSettings(route, stored, keys)) {
      if (warn) this.#warn(route, 'written for another auth config', text)
      return undefined
    }
    if (warn) this.#warned.delete(route)
    // JSON has no Infinity: a static key's "never expires" is stored as null.
    return { ...stored.token, expiresAt: stored.token.expiresAt ?? Infinity }
  }

  /**
   * No file for the route's settings: one the route has under other settings
   * (the newest) is named in a warning, as a changed config or stateKey is
   * worth knowing about. It stays: it may be another config's, sharing the dir.
   */
  async #reportOthers (route: string, keys: StateKeys): Promise<void> {
    // Route names are letters, digits, "_", "." and "-": only the dot means something in a pattern.
    const pattern = new RegExp(`^${route.replaceAll('.', '\\.')}\\.[0-9a-f]{${NAME_HASH_DIGITS}}\\.token\\.json$`)
    const names = (await readdir(this.#dir)).filter((name) => pattern.test(name))
    const dated = await Promise.all(names.map(async (name) => ({ name, mtimeMs: (await lstat(join(this.#dir, name)).catch(() => undefined))?.mtimeMs ?? 0 })))
    const newest = dated.sort((a, b) => b.mtimeMs - a.mtimeMs)[0]
    if (newest === undefined) return
    const text = await this.#read(route, newest.name)
    if (text !== undefined) await this.#parse(route, text, keys, true)
  }

  /**
   * Removes the route's file of an earlier version once the token lives under
   * its own name, but only if written for these settings: one for other
   * settings may still serve another config on the dir. (A process of an
   * earlier version could rewrite it between this check and the removal; such
   * processes share no lock with this version anyway: do not run both on one
   * dir.)
   */
  async #dropLegacy (route: string, keys: StateKeys): Promise<void> {
    let text
    try {
      text = (await readStateFile(join(this.#dir, legacyFileName(route)))).data.toString('utf8')
    } catch {
      return
    }
    if (await this.#parse(route, text, keys, false) !== undefined) await rm(join(this.#dir, legacyFileName(route)), { force: true })
  }

  /** Derived once per process (a passphrase costs a key derivation); a failure is tried again next time. */
  #stateKeys (): Promise<StateKeys> {
    this.#keys ??= stateKeys(this.#dir, this.#stateKey).catch((err: unknown) => {
      this.#keys = undefined
      throw err
    })
    return this.#keys
  }

  async #decrypt (text: string, keys: StateKeys): Promise<string> {
    if (keys.encryption === undefined) return text
    const jwe = text.trim()
    try {
      return await openEntry(jwe, keys.encryption)
    } catch (err) {
      // A file of the first format: its key was SHA-256 of the stateKey text.
      if (this.#stateKey === undefined) throw err
      const legacy = createHash('sha256').update(this.#stateKey).digest()
      const json = new TextDecoder().decode((await compactDecrypt(jwe, legacy)).plaintext)
      if ((JSON.parse(json) as Partial<StoredFile>).format !== LEGACY_FORMAT) throw err
      return json
    }
  }

  /**
   * Whether the file was written for the route's current auth settings. A file
   * of the first format is still read, so an upgrade keeps a refresh token the
   * provider has rotated; it carried an unsalted SHA-256, checked here in memory
   * only, and is rewritten in the new format at the next renewal.
   */
  #sameSettings (route: string, stored: StoredFile, keys: StateKeys): boolean {
    const settings = this.#settings.get(route) ?? null
    if (stored.format === LEGACY_FORMAT) {
      const legacy = (stored as unknown as { fingerprint?: unknown }).fingerprint
      return legacy === createHash('sha256').update(JSON.stringify(settings)).digest('hex')
    }
    return stored.hash === settingsHash(keys.hash, settings)
  }

  /** Warns once per file (identified by its text's digest): the broker reads the store again at each renewal. */
  #warn (route: string, reason: string, text: string): void {
    const seen = `${reason}\n${createHash('sha256').update(text).digest('base64')}`
    if (this.#warned.get(route) === seen) return
    this.#warned.set(route, seen)
    this.#log.warn({ event: 'token_file_ignored', route, reason }, 'stored token ignored')
  }
}

/**
 * Whether two configs give a route the same settings, for a reload to keep its
 * broker. Compared in memory only: never written anywhere (the store keys its
 * entries with `settingsHash`, keyed by the state dir's secret).
 */
export function authFingerprint (settings: unknown): string {
  return createHash('sha256').update(JSON.stringify(settings)).digest('hex')
}
