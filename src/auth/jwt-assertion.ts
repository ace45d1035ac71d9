import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import type { SigningKey } from './keys.js'

/** A signed JWT with the usual registered claims; the jti is fresh every time so replays are detectable. */
export async function signAssertion (key: SigningKey, claims: Record<string, unknown>, ttlSeconds: number): Promise<string> {
  const jwt = new SignJWT({ ...claims })
    .setProtectedHeader(key.kid === undefined ? { alg: key.alg, typ: 'JWT' } : { alg: key.alg, typ: 'JWT', kid: key.kid })
    .setIssuedAt()
    .setJti(randomUUID())
  if (claims.exp === undefined) jwt.setExpirationTime(`${ttlSeconds}s`)
  return jwt.sign(key.key)
}
