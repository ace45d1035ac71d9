import type { AuthConfigOf } from '../../config/schema.js'
import { createOAuthClient, type OAuthClient } from '../oauth-client.js'
import { bearer, type AuthScheme } from '../scheme.js'
import type { TokenResponse } from '../token.js'

/** RFC 6749 §6: exchange a refresh token for a new access token. */
export function refreshWith (client: OAuthClient): (refreshToken: string, signal: AbortSignal) => Promise<TokenResponse> {
  return (refreshToken, signal) => client.grant({ grant_type: 'refresh_token', refresh_token: refreshToken }, signal)
}

/**
 * A long-lived refresh token as the credential. The configured one is only the
 * seed: once the server rotates it, the broker holds (and persists) the new one
 * and obtains through `refresh`.
 */
export function refreshTokenScheme (config: AuthConfigOf<'refresh_token'>, where: string): AuthScheme {
  const client = createOAuthClient(config, where)
  const refresh = refreshWith(client)
  return {
    type: 'refresh_token',
    endpoint: client.endpoint,
    secrets: client.secrets,
    obtain: (signal) => refresh(config.refreshToken, signal),
    refresh,
    authorize: bearer
  }
}
