import type { AuthConfigOf } from '../../config/schema.js'
import { createOAuthClient } from '../oauth-client.js'
import { bearer, type AuthScheme } from '../scheme.js'
import { refreshWith } from './refresh-token.js'

/** RFC 6749 §4.3 resource owner password credentials grant. */
export function passwordScheme (config: AuthConfigOf<'password'>, where: string): AuthScheme {
  const client = createOAuthClient(config, where)
  return {
    type: 'password',
    endpoint: client.endpoint,
    secrets: client.secrets,
    obtain: (signal) => client.grant({ grant_type: 'password', username: config.username, password: config.password }, signal),
    refresh: refreshWith(client),
    authorize: bearer
  }
}
