import * as z from 'zod/mini'
import { authSecrets, Redactor } from '../auth/redaction.js'
import { requestToken, type ResponseFields } from '../auth/token-endpoint.js'
import { tokenFormat } from '../auth/token-source.js'
import { bodyEncoding, headerName, httpUrl, nonEmpty, tokenTimeout } from '../fields.js'
import { built, type Scheme } from './scheme.js'

const REFRESH_PLACEHOLDER = '{{refresh_token}}'

const options = built(() => z.strictObject({
  type: z.literal('login'),
  tokenUrl: httpUrl,
  bodyEncoding: z._default(bodyEncoding, 'json'),
  body: z._default(z.record(z.string(), z.unknown()), {}),
  /** Extra request headers for the login and refresh calls (an API key some login endpoints want). */
  headers: z._default(z.record(z.string(), z.string()), {}),
  /** `{{refresh_token}}` in the body stands for the current refresh token. */
  refresh: z.optional(z.strictObject({
    url: httpUrl,
    bodyEncoding: z.optional(bodyEncoding),
    body: z._default(z.record(z.string(), z.unknown()), { refresh_token: REFRESH_PLACEHOLDER })
  })),
  response: z._default(z.strictObject({
    accessToken: z._default(nonEmpty, 'access_token'),
    expiresIn: z._default(nonEmpty, 'expires_in'),
    refreshToken: z._default(nonEmpty, 'refresh_token'),
    refreshExpiresIn: z._default(nonEmpty, 'refresh_expires_in')
  }), { accessToken: 'access_token', expiresIn: 'expires_in', refreshToken: 'refresh_token', refreshExpiresIn: 'refresh_expires_in' }),
  header: headerName,
  scheme: z._default(z.string(), 'Bearer'),
  timeout: tokenTimeout
}))

/**
 * Any non-standard login endpoint (Vivacity's /get-token, Netography's user
 * credentials, in-house APIs): POST the configured body, read the token fields
 * where the config says, and renew with the configured refresh call.
 */
export const loginScheme: Scheme<ReturnType<typeof options>> = {
  type: 'login',
  options,
  create (config, { referenced }) {
    const fields: ResponseFields = config.response
    // Every configured body value may be a credential; keep them all out of messages.
    const secrets = Redactor.of([...stringValues(config.body), ...stringValues(config.headers), ...authSecrets(config, referenced)])
    const refresh = config.refresh
    return {
      source: {
        type: 'login',
        endpoint: config.tokenUrl,
        secrets,
        obtain: (signal) => requestToken({ url: config.tokenUrl, encoding: config.bodyEncoding, body: config.body, headers: config.headers, timeout: config.timeout, secrets, fields, signal }),
        ...(refresh === undefined
          ? {}
          : {
              refresh: (refreshToken: string, signal: AbortSignal) => requestToken({
                url: refresh.url,
                encoding: refresh.bodyEncoding ?? config.bodyEncoding,
                body: substitute(refresh.body, refreshToken) as Record<string, unknown>,
                headers: config.headers,
                timeout: config.timeout,
                secrets,
                // Wherever the refresh body puts it, not only in a `refresh_token` field.
                requestSecrets: [refreshToken],
                fields,
                signal
              })
            })
      },
      format: tokenFormat(config.header, config.scheme)
    }
  }
}

/** Puts the current refresh token wherever `{{refresh_token}}` stands in the refresh body. */
function substitute (value: unknown, refreshToken: string): unknown {
  if (typeof value === 'string') return value.split(REFRESH_PLACEHOLDER).join(refreshToken)
  if (Array.isArray(value)) return value.map((v) => substitute(v, refreshToken))
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, refreshToken)]))
  return value
}

function stringValues (value: unknown): string[] {
  if (typeof value === 'string') return [value]
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(stringValues)
  return []
}
