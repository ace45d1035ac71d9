import { createHash, createPublicKey, randomUUID, type KeyObject } from 'node:crypto'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import type { SigningKey } from './keys.js'

/** JWS algorithms a DPoP key may use: asymmetric only (RFC 9449 §4.2: never `none` or a MAC). */
export const DPOP_ALGS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const
export type DpopAlg = (typeof DPOP_ALGS)[number]
export const DEFAULT_DPOP_ALG: DpopAlg = 'ES256'

/** RFC 9449 §8.1: a nonce is 1*NQCHAR (printable ASCII but `"` and `\`); longer than this is not one either. */
const NONCE = /^[\x21\x23-\x5b\x5d-\x7e]{1,1024}$/
/** Nonces are kept per origin: a route talks to its token endpoint and its upstream, so a few are plenty. */
const MAX_ORIGINS = 16

interface ProofKey {
  privateKey: CryptoKey | KeyObject
  alg: string
  /** The public half, as every proof's `jwk` header carries it. */
  jwk: JWK
}

/** What a proof is bound to (RFC 9449 §4.2). */
export interface ProofTarget {
  method: string
  url: string
  /** The access token the request carries (resource requests): its hash becomes `ath`. */
  accessToken?: string
}

/**
 * One route's DPoP key pair and the proofs it signs (RFC 9449 §4): a JWT with
 * `typ: dpop+jwt` and the public key in its header, bound to the request's
 * method and URL (and the access token's hash), with the nonce the server last
 * gave for that origin (§8, §9).
 */
export class DpopProver {
  /** Whether the key is made at start and lives only in this process (no `key` configured). */
  readonly ephemeral: boolean
  readonly #key: Promise<ProofKey>
  readonly #nonces = new Map<string, string>()
  /** The last access token's `ath`: one hash per token, not per request. */
  #ath: { token: string, hash: string } | undefined

  private constructor (key: Promise<ProofKey>, ephemeral: boolean) {
    this.#key = key
    this.ephemeral = ephemeral
    // A failure surfaces on the first proof; never as an unhandled rejection before it.
    key.catch(() => {})
  }

  /** A fresh key pair, its private half not extractable: nothing can ever print or store it. */
  static generate (alg: DpopAlg = DEFAULT_DPOP_ALG): DpopProver {
    return new DpopProver(generateKeyPair(alg, { extractable: false }).then(async ({ privateKey, publicKey }) => ({
      privateKey,
      alg,
      jwk: publicJwk(await exportJWK(publicKey))
    })), true)
  }

  /**
   * A configured private key (PEM or JWK): the same key for every process and
   * restart that uses it. Throws, naming `where`, when its algorithm is not one
   * DPoP allows or does not fit the key (found at start, not at the first request).
   */
  static fromKey (key: SigningKey, where: string): DpopProver {
    if (!(DPOP_ALGS as readonly string[]).includes(key.alg)) throw new Error(`${where}: algorithm ${key.alg} cannot sign DPoP proofs; use one of ${DPOP_ALGS.join(', ')}`)
    if (!keyFits(key.key, key.alg)) throw new Error(`${where}: the key does not fit algorithm ${key.alg}`)
    const jwk = publicJwk(createPublicKey(key.key).export({ format: 'jwk' }) as JWK)
    return new DpopProver(Promise.resolve({ privateKey: key.key, alg: key.alg, jwk }), false)
  }

  /** The proof for one request (a new `jti` every time: a proof is never sent twice). */
  async proof (target: ProofTarget): Promise<string> {
    const key = await this.#key
    const claims: Record<string, string> = { htm: target.method, htu: htu(target.url) }
    if (target.accessToken !== undefined) claims.ath = this.#athOf(target.accessToken)
    const nonce = this.#nonces.get(originOf(target.url))
    if (nonce !== undefined) claims.nonce = nonce
    return new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, typ: 'dpop+jwt', jwk: key.jwk })
      .setIssuedAt()
      .setJti(randomUUID())
      .sign(key.privateKey)
  }

  /**
   * Keeps the `DPoP-Nonce` a server at `url`'s origin answered with (any answer
   * may carry one, §8.2); returns whether it was a usable nonce. A malformed
   * one is ignored rather than signed into later proofs.
   */
  noteNonce (url: string, header: string | string[] | undefined): boolean {
    const nonce = Array.isArray(header) ? header[0] : header
    if (nonce === undefined || !NONCE.test(nonce)) return false
    const origin = originOf(url)
    this.#nonces.delete(origin)
    if (this.#nonces.size >= MAX_ORIGINS) this.#nonces.delete(this.#nonces.keys().next().value as string)
    this.#nonces.set(origin, nonce)
    return true
  }

  /** The RFC 7638 thumbprint's input is the public JWK; tests compare it with the token's `cnf.jkt`. */
  async publicJwk (): Promise<JWK> {
    return (await this.#key).jwk
  }

  #athOf (accessToken: string): string {
    if (this.#ath?.token !== accessToken) this.#ath = { token: accessToken, hash: createHash('sha256').update(accessToken).digest('base64url') }
    return this.#ath.hash
  }
}

/** Whether a private key can sign with `alg` (its type, and its curve for ECDSA). */
function keyFits (key: KeyObject, alg: string): boolean {
  const type = key.asymmetricKeyType
  if (alg.startsWith('RS')) return type === 'rsa'
  if (alg.startsWith('PS')) return type === 'rsa' || type === 'rsa-pss'
  if (alg === 'EdDSA' || alg === 'Ed25519') return type === 'ed25519' || (alg === 'EdDSA' && type === 'ed448')
  const curves: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' }
  return type === 'ec' && key.asymmetricKeyDetails?.namedCurve === curves[alg]
}

/** The members of a public JWK that identify the key (no `d`, whatever the input held). */
function publicJwk (jwk: JWK): JWK {
  const { kty, crv, x, y, n, e } = jwk
  return Object.fromEntries(Object.entries({ kty, crv, x, y, n, e }).filter(([, v]) => v !== undefined)) as JWK
}

/** RFC 9449 §4.2 `htu`: the target URI without query and fragment. */
function htu (url: string): string {
  const u = new URL(url)
  u.search = ''
  u.hash = ''
  return u.href
}

function originOf (url: string): string {
  return new URL(url).origin
}

/**
 * Whether a `WWW-Authenticate` answer is the DPoP nonce challenge (RFC 9449
 * §9): the DPoP scheme with `error="use_dpop_nonce"`.
 */
export function isNonceChallenge (header: string | string[] | undefined): boolean {
  const value = Array.isArray(header) ? header.join(', ') : header ?? ''
  // The error code is defined for the DPoP scheme alone, so it and a DPoP challenge suffice.
  return /(?:^|,)\s*dpop(?:\s|,|$)/i.test(value) && /\berror\s*=\s*"?use_dpop_nonce\b/i.test(value)
}
