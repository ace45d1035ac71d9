import type { z } from 'zod/mini'
import type { DpopProver } from '../auth/dpop.js'
import type { TokenFormat, TokenSource } from '../auth/token-source.js'

/** What a scheme's factory is told besides its options. */
export interface SchemeContext {
  /** The key path of the auth block (`routes.NAME.auth`), for messages about its options. */
  where: string
  /** Values of the auth block that came from secret references: secrets whatever option carries them. */
  referenced: readonly string[]
  /**
   * Options given as one `${file:PATH}` reference, by option name
   * (`subjectToken`, `clientAssertion`) → the file: a scheme that sends a
   * credential another process renews reads it again for every token request.
   */
  files?: Readonly<Record<string, string>>
}

/** A route's credential as its scheme makes it: where the token comes from and how it is sent. */
export interface SchemeParts {
  source: TokenSource
  format: TokenFormat
  /** The route's DPoP key when its tokens are DPoP-bound (RFC 9449): requests then carry `DPoP` proofs, not `format`. */
  dpop?: DpopProver
}

/**
 * One auth type (SPEC "auth types"): its options and what it makes of them.
 * The config schema is built from the registry of these, so a new type is one
 * module and one registry line.
 */
export interface Scheme<Options extends z.ZodMiniObject<{ type: z.ZodMiniLiteral<string> }>> {
  /** The `type` of its auth blocks: what its options' `type` admits. */
  readonly type: z.output<Options>['type']
  /**
   * Its options' schema, built on first use (see `built`): a config checks
   * only the types it uses, so `token` builds one schema, not ten.
   */
  readonly options: () => Options
  /** Throws with a message naming the key when an option cannot be used (an unreadable key). */
  create (options: z.output<Options>, context: SchemeContext): SchemeParts
  /** Its tokens come from a person's login (`bearer-proxy login`), then refresh tokens: authorization_code, device_code. */
  readonly userLogin?: boolean
  /** The route's upstream when the route names none; without this, `upstream` is required. */
  defaultUpstream?: (options: z.output<Options>) => string
}

/**
 * A value made on its first use, then kept. Schemes build their option
 * schemas this way, so a short command such as `token` builds its route's
 * type only (about 2% of its instructions, measured: docs/performance.md).
 */
export function built<T> (make: () => T): () => T {
  let value: T | undefined
  return () => {
    value ??= make()
    return value
  }
}
