import { discoverIssuer, DiscoveryError, type IssuerMetadata } from './discovery.js'
import { TokenError } from './token-error.js'

/** The endpoints a route may configure, each by its own key (SPEC "auth types"). */
export interface EndpointUrls {
  tokenUrl?: string | undefined
  authorizationUrl?: string | undefined
  deviceAuthorizationUrl?: string | undefined
  revocationUrl?: string | undefined
}

export type EndpointName = keyof EndpointUrls

/** Where each endpoint is in an issuer's metadata (RFC 8414 §2, RFC 8628 §4, RFC 7009 via RFC 8414). */
const METADATA: Record<EndpointName, { field: 'tokenEndpoint' | 'authorizationEndpoint' | 'deviceAuthorizationEndpoint' | 'revocationEndpoint', name: string }> = {
  tokenUrl: { field: 'tokenEndpoint', name: 'token_endpoint' },
  authorizationUrl: { field: 'authorizationEndpoint', name: 'authorization_endpoint' },
  deviceAuthorizationUrl: { field: 'deviceAuthorizationEndpoint', name: 'device_authorization_endpoint' },
  revocationUrl: { field: 'revocationEndpoint', name: 'revocation_endpoint' }
}

export interface OAuthEndpointsOptions {
  /** The URLs the config gives; each wins over the metadata's. */
  urls: EndpointUrls
  /** `issuer`: the endpoints not given are read from its metadata. */
  issuer?: string | undefined
  /** The auth block's key path (`routes.NAME.auth`), for messages. */
  where: string
  /** Bounds one discovery, both documents included. */
  timeoutMs: number
}

/**
 * A route's OAuth endpoints: those configured, the others read from its
 * issuer's metadata (RFC 8414) the first time one is needed, then kept for the
 * life of the process. One discovery at a time (jose's remote JWKS: one
 * in-flight promise, cleared on success and failure); a failed one is a
 * TokenError `unavailable` naming the route's `issuer` key, so `serve` answers
 * 503 TOKEN_UNAVAILABLE with the reason and tries again at the next need,
 * paced by the broker's backoff, instead of refusing to start.
 */
export class OAuthEndpoints {
  readonly issuer: string | undefined
  readonly #urls: EndpointUrls
  readonly #where: string
  readonly #timeoutMs: number
  #metadata: IssuerMetadata | undefined
  #pending: Promise<IssuerMetadata> | undefined

  constructor (options: OAuthEndpointsOptions) {
    this.issuer = options.issuer
    this.#urls = options.urls
    this.#where = options.where
    this.#timeoutMs = options.timeoutMs
  }

  /**
   * Names the token endpoint before it is known: its URL, else the issuer's
   * (one issuer, one token endpoint). The key of the request budget.
   */
  get key (): string {
    return this.#urls.tokenUrl ?? this.issuer ?? ''
  }

  /** The endpoint's URL: configured, else from the metadata; throws when neither has it. */
  async url (name: EndpointName, signal?: AbortSignal): Promise<string> {
    const url = await this.optional(name, signal)
    if (url !== undefined) return url
    const { name: field } = METADATA[name]
    const why = this.issuer === undefined ? 'is not set' : `is not set and the issuer's metadata names no ${field}`
    throw new TokenError('unavailable', `${this.#where}.${name} ${why}`)
  }

  /** The endpoint's URL, or undefined when neither the config nor the metadata names it (revocation is optional). */
  async optional (name: EndpointName, signal?: AbortSignal): Promise<string | undefined> {
    const configured = this.#urls[name]
    if (configured !== undefined) return configured
    const metadata = await this.metadata(signal)
    return metadata?.[METADATA[name].field]
  }

  /** The issuer's metadata, read at the first call; undefined when the route names no issuer. */
  async metadata (signal?: AbortSignal): Promise<IssuerMetadata | undefined> {
    const issuer = this.issuer
    if (issuer === undefined) return undefined
    if (this.#metadata !== undefined) return this.#metadata
    this.#pending ??= discoverIssuer(issuer, { timeoutMs: this.#timeoutMs, ...(signal === undefined ? {} : { signal }) }).then((metadata) => {
      this.#metadata = metadata
      return metadata
    }).finally(() => { this.#pending = undefined })
    try {
      return await this.#pending
    } catch (err) {
      if (!(err instanceof DiscoveryError)) throw err
      throw new TokenError('unavailable', `${this.#where}.issuer: ${err.message}`, { cause: err })
    }
  }
}
