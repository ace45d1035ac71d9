import type { AuthConfigOf } from '../../config/schema.js'
import { authSecrets, Redactor } from '../redaction.js'
import type { AuthScheme } from '../scheme.js'
import { requestToken, type ResponseFields } from '../token-endpoint.js'

const REFRESH_PLACEHOLDER = '{{refresh_token}}'

/**
 * Any non-standard login endpoint (Vivacity's /get-token, Netography's user
 * credentials, in-house APIs): POST the configured body, read the token fields
 * where the config says, and renew with the configured refresh call.
 */
export function loginScheme (config: AuthConfigOf<'login'>): AuthScheme {
  const fields: ResponseFields = config.response
  // Every configured body value may be a credential; keep them all out of messages.
  const secrets = Redactor.of([...stringValues(config.body), ...stringValues(config.headers), ...authSecrets(config)])
  const header = config.header
  const prefix = config.scheme === '' ? '' : `${config.scheme} `
  const refresh = config.refresh
  return {
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
        }),
    authorize: (token) => [header, `${prefix}${token.accessToken}`]
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
