import { createHash, randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { compactDecrypt } from 'jose'
import type { Logger } from 'pino'
import { acquireFileLock } from './file-lock.js'
import { openEntry, sealEntry, settingsHash, stateKeys, type StateKeys } from './state-keys.js'
import { sendableInHeader, type TokenSet } from './token.js'
import type { LockOptions, StoreLock, TokenStore } from './token-store.js'

const FORMAT = 2
/** Files of the first format: an unsalted SHA-256 of the auth block, a key that was SHA-256 of stateKey. */
const LEGACY_FORMAT = 1

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

/**
 * Tokens persisted as one file per route, `<route>.token.json` (mode 0600,
 * written to a temp file and renamed, so a crash never leaves half a file),
 * so a restart neither spends the token budget nor loses a refresh token the
 * provider has already rotated, and every process using the dir shares them
 * (a renewal runs under `<route>.token.lock`). A file that is corrupt, from
 * other credentials or unreadable with the key is ignored with a warning.
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
    let text: string
    try {
      text = await readFile(this.#file(route), 'utf8')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOENT') this.#warn(route, `cannot read: ${code ?? 'error'}`, code ?? 'error')
      return undefined
    }
    let keys: StateKeys
    try {
      keys = await this.#stateKeys()
    } catch (err) {
      this.#warn(route, `no state key: ${(err as Error).message}`, text)
      return undefined
    }
    let stored: StoredFile
    try {
      stored = JSON.parse(await this.#decrypt(text, keys)) as StoredFile
      if ((stored.format !== FORMAT && stored.format !== LEGACY_FORMAT) || stored.route !== route || typeof stored.token?.accessToken !== 'string' || !sendableInHeader(stored.token.accessToken)) throw new Error('not a token file')
    } catch {
      this.#warn(route, keys.encryption === undefined ? 'corrupt' : 'corrupt or encrypted with another key', text)
      return undefined
    }
    if (!this.#sameSettings(route, stored, keys)) {
      this.#warn(route, 'written for another auth config', text)
      return undefined
    }
    this.#warned.delete(route)
    // JSON has no Infinity: a static key's "never expires" is stored as null.
    return { ...stored.token, expiresAt: stored.token.expiresAt ?? Infinity }
  }

  async save (route: string, token: TokenSet): Promise<void> {
    const keys = await this.#stateKeys()
    const stored: StoredFile = { format: FORMAT, route, hash: settingsHash(keys.hash, this.#settings.get(route) ?? null), token }
    const json = JSON.stringify(stored)
    const text = await sealEntry(json, keys.encryption)
    await mkdir(this.#dir, { recursive: true, mode: 0o700 })
    const file = this.#file(route)
    const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`
    try {
      await writeFile(temp, text, { mode: 0o600 })
      await chmod(temp, 0o600)
      await rename(temp, file)
    } catch (err) {
      await rm(temp, { force: true })
      throw err
    }
  }

  async delete (route: string): Promise<void> {
    await rm(this.#file(route), { force: true })
  }

  async lock (route: string, options: LockOptions): Promise<StoreLock | undefined> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 })
    return acquireFileLock(join(this.#dir, `${route}.token.lock`), options)
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

  #file (route: string): string {
    return join(this.#dir, `${route}.token.json`)
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
