import type { AuthConfigOf } from '../../config/schema.js'
import { authSecrets, Redactor } from '../redaction.js'
import type { AuthScheme } from '../scheme.js'

/** A fixed API key: no token request, never expires, any header and scheme word. */
export function staticScheme (config: AuthConfigOf<'static'>): AuthScheme {
  const value = config.scheme === '' ? config.token : `${config.scheme} ${config.token}`
  return {
    type: 'static',
    endpoint: undefined,
    secrets: Redactor.of(authSecrets(config)),
    obtain: async () => ({ accessToken: config.token, expiresIn: Infinity }),
    authorize: () => [config.header, value]
  }
}
