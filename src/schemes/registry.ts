import * as z from 'zod/mini'
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

export const AUTH_TYPES = SCHEMES.map((s) => s.type)

/**
 * A scheme's options as a member of the union: told apart by `type` alone
 * (a loose object hands the block on whole), its own schema is built when an
 * auth block of that type is first checked. So `token` builds the options of
 * its route's type only, not of all ten.
 */
function member (scheme: { readonly type: string, readonly options: () => z.ZodMiniType<unknown, { [key: string]: unknown, type: string }> }): z.ZodMiniType {
  const options = z.lazy(scheme.options)
  // What the route's object asks of its `auth` at every parse: whether it may come out undefined.
  // Never, for any type; said here, so that asking does not build every type's schema to find out.
  options._zod.optout = undefined
  return z.pipe(z.looseObject({ type: z.literal(scheme.type) }), options)
}

/** A route's `auth` block: one of the schemes' options, told apart by `type`. */
export const authSchema = z.discriminatedUnion('type', SCHEMES.map(member) as unknown as Options<typeof SCHEMES>, {
  error: (issue) => issue.code === 'invalid_union' ? `must be one of: ${AUTH_TYPES.join(', ')}` : undefined
})

export type AuthConfig = z.output<typeof authSchema>
export type AuthType = AuthConfig['type']
export type AuthConfigOf<T extends AuthType> = Extract<AuthConfig, { type: T }>

const byType = new Map<string, Scheme<never>>(SCHEMES.map((s) => [s.type, s as unknown as Scheme<never>]))

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

/** The client options of an OAuth type's auth block (`clientAuth`, `tls`, ...), else undefined. */
export function clientOptionsOf (config: AuthConfig): ClientOptions | undefined {
  // Types whose options include the client options every OAuth grant takes (SPEC "Options every OAuth type takes").
  return 'clientAuth' in (schemeOf(config).options() as z.ZodMiniObject).shape ? config as unknown as ClientOptions : undefined
}

/** Whether the route's tokens come from a person's login (`bearer-proxy login`): authorization_code, device_code. */
export function isUserLogin (config: AuthConfig): boolean {
  return schemeOf(config).userLogin === true
}
