import { createPrivateKey, createSecretKey, type KeyObject } from 'node:crypto'

export interface SigningKey {
  key: KeyObject
  alg: string
  kid?: string
}

/**
 * A private key from config: PEM text (PKCS#8, PKCS#1 or SEC1), a JWK object,
 * or a JWK as JSON text. The algorithm defaults from the key type.
 */
export function privateSigningKey (input: string | Record<string, unknown>, alg: string | undefined, where: string): SigningKey {
  let key: KeyObject
  let kid: string | undefined
  try {
    const jwk = typeof input === 'string' && input.trim().startsWith('{') ? JSON.parse(input) as Record<string, unknown> : typeof input === 'object' ? input : undefined
    if (jwk !== undefined) {
      key = createPrivateKey({ key: jwk as never, format: 'jwk' })
      if (typeof jwk.kid === 'string') kid = jwk.kid
      if (alg === undefined && typeof jwk.alg === 'string') alg = jwk.alg
    } else {
      key = createPrivateKey(input as string)
    }
  } catch {
    // Never echo the key material itself.
    throw new Error(`${where}: is not a readable private key (PEM or JWK)`)
  }
  const signingKey: SigningKey = { key, alg: alg ?? defaultAlg(key, where) }
  if (kid !== undefined) signingKey.kid = kid
  return signingKey
}

export function secretSigningKey (secret: string, alg = 'HS256'): SigningKey {
  return { key: createSecretKey(Buffer.from(secret, 'utf8')), alg }
}

function defaultAlg (key: KeyObject, where: string): string {
  switch (key.asymmetricKeyType) {
    case 'rsa': return 'RS256'
    case 'rsa-pss': return 'PS256'
    case 'ed25519': return 'EdDSA'
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve
      if (curve === 'prime256v1') return 'ES256'
      if (curve === 'secp384r1') return 'ES384'
      if (curve === 'secp521r1') return 'ES512'
      break
    }
  }
  throw new Error(`${where}: cannot tell the signing algorithm for this key; set "alg"`)
}
