import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import * as z from 'zod/mini'
import { authSecrets, Redactor } from '../auth/redaction.js'
import { requestToken } from '../auth/token-endpoint.js'
import { BEARER } from '../auth/token-source.js'
import { baseUrlIssue, nonEmpty, parseHttpUrl, tokenTimeout, transformIssue } from '../fields.js'
import { decodeNetosecret, netographyBase } from './netosecret.js'
import { built, type Scheme } from './scheme.js'

const options = built(() => z.strictObject({
  type: z.literal('netography'),
  /** base64 of JSON {url, shortname, appname, appkey, sharedsecret}; decoded once here. */
  netosecret: z.pipe(nonEmpty, z.transform((text: string, ctx) => {
    const decoded = decodeNetosecret(text)
    if (typeof decoded === 'string') {
      transformIssue(ctx, { message: decoded })
      return z.NEVER
    }
    // The secret's url is the base of its token endpoints (and the default upstream): held to the upstream's rules.
    const url = parseHttpUrl(decoded.url)
    const issue = url === undefined ? 'must be an absolute http(s) URL' : baseUrlIssue(url)
    if (issue !== undefined) {
      transformIssue(ctx, { message: `"url" ${issue}` })
      return z.NEVER
    }
    return decoded
  })),
  timeout: tokenTimeout
}))

/**
 * Netography Fusion API key flow: a JWT request token (HS256 with the shared
 * secret; claims iat, a fresh jti, appname, appkey, shortname) POSTed as
 * `{"jwt": ...}` to /api/v1/auth/token; renewal with the returned refresh
 * token at /api/auth/bearer/refresh (form), falling back to a new request
 * token when that is refused (the broker does the fallback). The route's
 * upstream defaults to the secret's API.
 */
export const netographyScheme: Scheme<ReturnType<typeof options>> = {
  type: 'netography',
  options,
  defaultUpstream: (config) => netographyBase(config.netosecret),
  create (config, { referenced }) {
    const secret = config.netosecret
    const base = netographyBase(secret)
    const key = new TextEncoder().encode(secret.sharedsecret)
    // The shared secret and app key; the request JWT of each call is added when a message is cleaned.
    const secrets = Redactor.of([secret.sharedsecret, secret.appkey, ...authSecrets(config, referenced)])
    const tokenUrl = `${base}/api/v1/auth/token`
    return {
      source: {
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
        })
      },
      format: BEARER
    }
  }
}
