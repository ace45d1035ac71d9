import type { AuthConfig } from '../../config/schema.js'
import type { AuthScheme } from '../scheme.js'
import { clientCredentialsScheme } from './client-credentials.js'
import { jwtBearerScheme } from './jwt-bearer.js'
import { loginScheme } from './login.js'
import { netographyScheme } from './netography.js'
import { passwordScheme } from './password.js'
import { refreshTokenScheme } from './refresh-token.js'
import { staticScheme } from './static.js'

/** The scheme for a route's `auth` block; `where` is its key path, for error messages. */
export function createScheme (config: AuthConfig, where: string): AuthScheme {
  switch (config.type) {
    case 'static': return staticScheme(config)
    case 'client_credentials': return clientCredentialsScheme(config, where)
    case 'password': return passwordScheme(config, where)
    case 'refresh_token': return refreshTokenScheme(config, where)
    case 'jwt_bearer': return jwtBearerScheme(config, where)
    case 'login': return loginScheme(config)
    case 'netography': return netographyScheme(config)
  }
}
