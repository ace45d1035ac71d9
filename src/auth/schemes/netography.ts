import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import type { AuthConfigOf } from '../../config/schema.js'
import { authSecrets, Redactor } from '../redaction.js'
import { bearer, type AuthScheme } from '../scheme.js'
import { requestToken } from '../token-endpoint.js'
import { netographyBase } from './netosecret.js'

/**
 * Netography Fusion API key flow: a JWT request token (HS256 with the shared
 * secret; claims iat, a fresh jti, appname, appkey, shortname) POSTed as
 * `{"jwt": ...}` to /api/v1/auth/token; renewal with the returned refresh
 * token at /api/auth/bearer/refresh (form), falling back to a new request
 * token when that is refused (the broker does the fallback).
 */
export function netographyScheme (config: AuthConfigOf<'netography'>): AuthScheme {
  const secret = config.netosecret
  const base = netographyBase(secret)
  const key = new TextEncoder().encode(secret.sharedsecret)
  // The shared secret and app key; the request JWT of each call is added when a message is cleaned.
  const secrets = Redactor.of(authSecrets(config))
  const tokenUrl = `${base}/api/v1/auth/token`
  return {
    type: 'netography',
    endpoint: tokenUrl,
    secrets,
    async obtain (signal) {
      const jwt = await new SignJWT({ appname: secret.appname, appkey: secret.appkey, shortname: secret.shortname })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setIssuedAt()
        .setJti(randomUUID())
        .sign(key)
      return requestToken({ url: tokenUrl, encoding: 'json', body: { jwt }, timeout: config.timeout, secrets, signal })
    },
    refresh: (refreshToken, signal) => requestToken({
      url: `${base}/api/auth/bearer/refresh`, encoding: 'form', body: { refresh_token: refreshToken }, timeout: config.timeout, secrets, signal
    }),
    authorize: bearer
  }
}
