import { createHmac, hkdf, pbkdf2, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { compactDecrypt, CompactEncrypt } from 'jose'
import { link, rm, writeFile } from './fs-async.js'
import { openStateDir, readStateFile } from './state-dir.js'

/** The state dir's own random secret, created on first use. */
export const DIR_SECRET_FILE = '.key'
/** Size of a store's own random secret (the dir's `.key`, or the one a Redis store keeps). */
export const STORE_SECRET_BYTES = 32
const DIR_SECRET_BYTES = STORE_SECRET_BYTES
/** A stateKey given as a key carries at least this much: 256 bits, the AES key size. */
const MIN_KEY_BYTES = 32
/**
 * PBKDF2-HMAC-SHA256 rounds for a passphrase (OWASP 2023: 600,000). It runs
 * once per process (about 0.1 s), not per file: JWE PBES2 would pay it on
 * every read and write of a token.
 */
export const PASSPHRASE_ITERATIONS = 600_000

export interface StateKeys {
  /** Encrypts entries at rest (JWE `dir` + A256GCM); undefined without stateKey. */
  encryption: Uint8Array | undefined
  /** Keys the hash that ties an entry to the route's auth settings. */
  hash: Uint8Array
}

/**
 * A stateKey that is a key: 64+ hex digits, or base64 / base64url (canonical,
 * with upper case, lower case and digits, as random output has) of 32+ bytes,
 * e.g. `openssl rand -base64 32`. Anything else is a passphrase. A key taken
 * for a passphrase only costs a key derivation; the other way round would
 * skip one, hence the character test.
 */
export function keyOfStateKey (text: string): Buffer | undefined {
  const value = text.trim()
  if (/^(?:[0-9a-fA-F]{2}){32,}$/.test(value)) return Buffer.from(value, 'hex')
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(value) || !/[A-Z]/.test(value) || !/[a-z]/.test(value) || !/[0-9]/.test(value)) return undefined
  const url = /[-_]/.test(value)
  if (url && /[+/]/.test(value)) return undefined
  const bytes = Buffer.from(value, url ? 'base64url' : 'base64')
  const canonical = bytes.toString(url ? 'base64url' : 'base64').replace(/=+$/, '')
  return bytes.length >= MIN_KEY_BYTES && canonical === value.replace(/=+$/, '') ? bytes : undefined
}

/**
 * The keys of a state dir. With a stateKey, both come from it (a passphrase
 * through PBKDF2, salted with the dir's secret file), so nothing on disk can
 * check a guess at the credentials behind an entry; without one, the hash is
 * keyed with the dir's own random secret (then the entries themselves are
 * plain, beside it).
 */
export async function stateKeys (dir: string, stateKey: string | undefined): Promise<StateKeys> {
  return deriveStateKeys(stateKey, () => dirSecret(dir))
}

/**
 * The keys of any store, from the stateKey and the store's own random secret
 * (`secret`, asked for only when needed: a stateKey that is a key needs
 * none). A passphrase is stretched with PBKDF2 salted with that secret.
 */
export async function deriveStateKeys (stateKey: string | undefined, secret: () => Promise<Uint8Array>): Promise<StateKeys> {
  if (stateKey === undefined) return { encryption: undefined, hash: await subkey(await secret(), 'hash') }
  const master = keyOfStateKey(stateKey) ?? await promisify(pbkdf2)(stateKey, await secret(), PASSPHRASE_ITERATIONS, 32, 'sha256')
  const [encryption, hash] = await Promise.all([subkey(master, 'encryption'), subkey(master, 'hash')])
  return { encryption, hash }
}

/** An entry as stored: the JSON itself, or with a key its JWE (`dir` + A256GCM, jose) in compact form. */
export async function sealEntry (json: string, encryption: Uint8Array | undefined): Promise<string> {
  if (encryption === undefined) return json
  return new CompactEncrypt(new TextEncoder().encode(json)).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(encryption)
}

/** The JSON of a stored entry; throws when it was encrypted with another key or altered. */
export async function openEntry (text: string, encryption: Uint8Array | undefined): Promise<string> {
  if (encryption === undefined) return text
  return new TextDecoder().decode((await compactDecrypt(text.trim(), encryption)).plaintext)
}

/** HKDF-SHA256 (RFC 5869): one independent key per use from the same secret. */
async function subkey (secret: Uint8Array, use: 'encryption' | 'hash'): Promise<Uint8Array> {
  return new Uint8Array(await promisify(hkdf)('sha256', secret, '', `bearer-proxy state ${use}`, 32))
}

/** HMAC-SHA256 of the settings in a canonical JSON form (object keys sorted), hex. */
export function settingsHash (key: Uint8Array, settings: unknown): string {
  return createHmac('sha256', key).update(canonicalJson(settings)).digest('hex')
}

function canonicalJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

/**
 * `<dir>/.key`: 32 random bytes, mode 0600. Written to a temporary file and
 * hard-linked into place, which fails if the name exists (like O_EXCL) and
 * never shows a half-written file, so processes starting together agree on
 * one secret. The dir is checked first (see openStateDir): a secret read
 * from, or written to, a folder others can change would be theirs to choose
 * or replace.
 */
async function dirSecret (dir: string): Promise<Buffer> {
  await openStateDir(dir)
  const file = join(dir, DIR_SECRET_FILE)
  const read = (): Promise<Buffer> => readStateFile(file).then((found) => found.data)
  let secret = await read().catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined
    throw err
  })
  if (secret === undefined) {
    const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`
    try {
      await writeFile(temp, randomBytes(DIR_SECRET_BYTES), { mode: 0o600, flag: 'wx' })
      await link(temp, file).catch((err: NodeJS.ErrnoException) => {
        // Another process created it first: theirs is the one.
        if (err.code !== 'EEXIST') throw err
      })
    } finally {
      await rm(temp, { force: true })
    }
    secret = await read()
  }
  if (secret.length !== DIR_SECRET_BYTES) throw new Error(`${file} is not ${DIR_SECRET_BYTES} bytes`)
  return secret
}
