import * as z from 'zod'
import { authorizationCodeScheme } from './authorization-code.js'
import { clientCredentialsScheme } from './client-credentials.js'
import { deviceCodeScheme } from './device-code.js'
import { jwtBearerScheme } from './jwt-bearer.js'
import { loginScheme } from './login.js'
import type { ClientOptions } from './oauth-options.js'
import { netographyScheme } from './netography.js'
import { passwordScheme } from './password.js'
import { refreshTokenScheme } from './refresh-token.js'
import type { Scheme, SchemeContext, SchemeParts } from './scheme.js'
import { staticScheme } from './static.js'
import { tokenExchangeScheme } from './token-exchange.js'

/** Every auth type: a new one is its module and one line here. */
const SCHEMES = [
  staticScheme,
  clientCredentialsScheme,
  passwordScheme,
  refreshTokenScheme,
  jwtBearerScheme,
  loginScheme,
  netographyScheme,
  tokenExchangeScheme,
  authorizationCodeScheme,
  deviceCodeScheme
] as const

type Options<T> = { -readonly [K in keyof T]: T[K] extends Scheme<infer O> ? O : never }

export const AUTH_TYPES = SCHEMES.map((s) => s.options.shape.type.value)

/** A route's `auth` block: one of the schemes' options, told apart by `type`. */
export const authSchema = z.discriminatedUnion('type', SCHEMES.map((s) => s.options) as Options<typeof SCHEMES>, {
  error: (issue) => issue.code === 'invalid_union' ? `must be one of: ${AUTH_TYPES.join(', ')}` : undefined
})

export type AuthConfig = z.output<typeof authSchema>
export type AuthType = AuthConfig['type']
export type AuthConfigOf<T extends AuthType> = Extract<AuthConfig, { type: T }>

const byType = new Map<string, Scheme<never>>(SCHEMES.map((s) => [s.options.shape.type.value, s as unknown as Scheme<never>]))

function schemeOf (config: AuthConfig): Scheme<never> {
  // The schema admits only registered types.
  return byType.get(config.type) as Scheme<never>
}

/** The token source and format of a route's validated `auth` block; throws with the key path when an option is unusable. */
export function createScheme (config: AuthConfig, context: SchemeContext): SchemeParts {
  const parts = schemeOf(config).create(config as never, context)
  // A type whose factory forgot its DPoP key would send bound tokens as bearer tokens: refused at start.
  if ('dpop' in config && config.dpop !== undefined && parts.dpop === undefined) {
    throw new Error(`${context.where}.dpop: not supported by type ${config.type}`)
  }
  return parts
}

/** The upstream a route gets from its auth settings when it names none (Netography's API), else undefined. */
export function defaultUpstream (config: AuthConfig): string | undefined {
  return schemeOf(config).defaultUpstream?.(config as never)
}

/** Types whose options include the client options every OAuth grant takes (SPEC "Options every OAuth type takes"). */
const CLIENT_TYPES = new Set(SCHEMES.filter((s) => 'clientAuth' in s.options.shape).map((s) => s.options.shape.type.value))

/** The client options of an OAuth type's auth block (`clientAuth`, `tls`, ...), else undefined. */
export function clientOptionsOf (config: AuthConfig): ClientOptions | undefined {
  return CLIENT_TYPES.has(config.type) ? config as unknown as ClientOptions : undefined
}

/** Whether the route's tokens come from a person's login (`bearer-proxy login`): authorization_code, device_code. */
export function isUserLogin (config: AuthConfig): boolean {
  return schemeOf(config).userLogin === true
}
