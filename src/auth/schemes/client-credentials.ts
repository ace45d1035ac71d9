import type { AuthConfigOf } from '../../config/schema.js'
import { createOAuthClient } from '../oauth-client.js'
import { bearer, type AuthScheme } from '../scheme.js'
import { refreshWith } from './refresh-token.js'

/** RFC 6749 §4.4 client credentials grant. */
export function clientCredentialsScheme (config: AuthConfigOf<'client_credentials'>, where: string): AuthScheme {
  const client = createOAuthClient(config, where)
  return {
    type: 'client_credentials',
    endpoint: client.endpoint,
    secrets: client.secrets,
    obtain: (signal) => client.grant({ grant_type: 'client_credentials' }, signal),
    refresh: refreshWith(client),
    authorize: bearer
  }
}
