import { createHash, randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { compactDecrypt, CompactEncrypt } from 'jose'
import type { Logger } from 'pino'
import { sendableInHeader, type TokenSet } from './token.js'
import type { TokenStore } from './token-store.js'

const FORMAT = 1

interface StoredFile {
  format: number
  route: string
  /** Hash of the route's auth config: a file written for other credentials is not used. */
  fingerprint: string
  token: TokenSet
}

export interface FileTokenStoreOptions {
  dir: string
  /** Per route name, a fingerprint of its auth config. */
  fingerprints: Map<string, string>
  logger: Logger
  /** Encrypts files at rest (JWE dir + A256GCM) when set; any text, hashed to 256 bits. */
  key?: string | undefined
}

/**
 * Tokens persisted as one file per route (mode 0600, written to a temp file
 * and renamed, so a crash never leaves half a file), so a restart neither
 * spends the token budget nor loses a refresh token the provider has already
 * rotated. A file that is corrupt, from another config or unreadable with the
 * key is ignored with a warning.
 */
export class FileTokenStore implements TokenStore {
  readonly #dir: string
  readonly #fingerprints: Map<string, string>
  readonly #log: Logger
  readonly #key: Uint8Array | undefined

  constructor (options: FileTokenStoreOptions) {
    this.#dir = options.dir
    this.#fingerprints = options.fingerprints
    this.#log = options.logger
    this.#key = options.key === undefined ? undefined : createHash('sha256').update(options.key).digest()
  }

  async load (route: string): Promise<TokenSet | undefined> {
    let text: string
    try {
      text = await readFile(this.#file(route), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#warn(route, `cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
      return undefined
    }
    try {
      const json = this.#key === undefined ? text : new TextDecoder().decode((await compactDecrypt(text.trim(), this.#key)).plaintext)
      const stored = JSON.parse(json) as StoredFile
      if (stored.format !== FORMAT || stored.route !== route || typeof stored.token?.accessToken !== 'string' || !sendableInHeader(stored.token.accessToken)) throw new Error('not a token file')
      if (stored.fingerprint !== this.#fingerprints.get(route)) {
        this.#warn(route, 'written for another auth config')
        return undefined
      }
      // JSON has no Infinity: a static key's "never expires" is stored as null.
      return { ...stored.token, expiresAt: stored.token.expiresAt ?? Infinity }
    } catch {
      this.#warn(route, this.#key === undefined ? 'corrupt' : 'corrupt or encrypted with another key')
      return undefined
    }
  }

  async save (route: string, token: TokenSet): Promise<void> {
    const stored: StoredFile = { format: FORMAT, route, fingerprint: this.#fingerprints.get(route) ?? '', token }
    const json = JSON.stringify(stored)
    const text = this.#key === undefined ? json : await new CompactEncrypt(new TextEncoder().encode(json)).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(this.#key)
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

  #file (route: string): string {
    return join(this.#dir, `${route}.token.json`)
  }

  #warn (route: string, reason: string): void {
    this.#log.warn({ event: 'token_file_ignored', route, reason }, 'stored token ignored')
  }
}

/** A fingerprint of an auth config: stable across restarts, changes with any option or secret. */
export function authFingerprint (auth: unknown): string {
  return createHash('sha256').update(JSON.stringify(auth)).digest('hex')
}
