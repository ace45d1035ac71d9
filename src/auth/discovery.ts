import type { Dispatcher } from 'undici'
import * as z from 'zod/mini'
import { readLimited } from './token-endpoint.js'
import { loadUndici } from './undici.js'

/** A metadata document larger than this is not one (real ones are a few KiB). */
export const MAX_METADATA_BYTES = 256 * 1024

/** The endpoints and capabilities of an authorization server (RFC 8414 §2), as the proxy uses them. */
export interface IssuerMetadata {
  /** Equal to the configured issuer, character for character. */
  issuer: string
  tokenEndpoint?: string
  authorizationEndpoint?: string
  deviceAuthorizationEndpoint?: string
  revocationEndpoint?: string
  jwksUri?: string
  /** RFC 9207: the server puts `iss` in every authorization response, so a response without it is refused. */
  authorizationResponseIssParameterSupported: boolean
  codeChallengeMethodsSupported?: string[]
  tokenEndpointAuthMethodsSupported?: string[]
  /** The document the metadata was read from. */
  source: string
}

export interface DiscoveryOptions {
  /** Bounds the whole discovery, both documents included. */
  timeoutMs: number
  signal?: AbortSignal
  dispatcher?: Dispatcher
}

/** Discovery failed: the message names the issuer and the documents tried, never a body. */
export class DiscoveryError extends Error {
  constructor (message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'DiscoveryError'
  }
}

/** An issuer's metadata as read here; its schema built at the first discovery, as most configs have none. */
function metadataDocument () {
  const httpUrl = z.optional(z.string().check(z.refine(isHttpUrl, 'is not an absolute http(s) URL')))
  const stringList = z.optional(z.array(z.string()))
  return z.object({
    issuer: z.string(),
    token_endpoint: httpUrl,
    authorization_endpoint: httpUrl,
    device_authorization_endpoint: httpUrl,
    revocation_endpoint: httpUrl,
    jwks_uri: httpUrl,
    authorization_response_iss_parameter_supported: z.optional(z.boolean()),
    code_challenge_methods_supported: stringList,
    token_endpoint_auth_methods_supported: stringList
  })
}
let MetadataDocument: ReturnType<typeof metadataDocument> | undefined

/**
 * The two places an issuer's metadata may be, in the order they are tried:
 * RFC 8414 §3.1 inserts the well-known segment between the host and the
 * issuer's path (`https://as/.well-known/oauth-authorization-server/tenant`);
 * OpenID Connect Discovery §4.1 appends it to the issuer
 * (`https://as/tenant/.well-known/openid-configuration`). A terminating `/`
 * of the issuer is removed first (RFC 8414 §3.1).
 */
export function wellKnownUrls (issuer: string): [string, string] {
  const url = parseIssuer(issuer)
  const path = url.pathname.replace(/\/+$/, '')
  return [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}${path}/.well-known/openid-configuration`
  ]
}

/**
 * Reads an authorization server's metadata (RFC 8414): the RFC 8414 document,
 * else the OpenID Connect one. The document's `issuer` must equal `issuer`
 * exactly (RFC 8414 §3.3): otherwise whoever serves the document could send
 * the login, the code and the client's credentials to endpoints of another
 * server (the mix-up attack), so it is refused rather than tried further.
 */
export async function discoverIssuer (issuer: string, options: DiscoveryOptions): Promise<IssuerMetadata> {
  const urls = wellKnownUrls(issuer)
  const timeout = AbortSignal.timeout(options.timeoutMs)
  const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
  const misses: string[] = []
  for (const url of urls) {
    const found = await fetchDocument(url, signal, options, issuer)
    if (typeof found === 'string') {
      misses.push(`${url} (${found})`)
      continue
    }
    return metadataFrom(found, url, issuer)
  }
  throw new DiscoveryError(`issuer ${issuer}: no authorization server metadata at ${misses.join(' nor at ')}`)
}

/**
 * The document's JSON, or why this place has none (a status, not JSON) so the
 * next one is tried. A connection failure or a timeout ends the discovery: the
 * other document is on the same server.
 */
async function fetchDocument (url: string, signal: AbortSignal, options: DiscoveryOptions, issuer: string): Promise<Record<string, unknown> | string> {
  let status: number
  let text: string
  try {
    const { request } = await loadUndici()
    const res = await request(url, {
      method: 'GET',
      headers: { accept: 'application/json' },
      signal,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher })
    })
    status = res.statusCode
    if (status !== 200) {
      // Redirects are not followed: the issuer's own server must answer for it.
      await res.body.dump()
      return `HTTP ${status}`
    }
    text = await readLimited(res.body, MAX_METADATA_BYTES)
  } catch (err) {
    const reason = signal.aborted ? `no answer within ${options.timeoutMs} ms` : describe(err)
    throw new DiscoveryError(`issuer ${issuer}: reading ${url}: ${reason}`, { cause: err })
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return 'not JSON'
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return 'not a JSON object'
  return json as Record<string, unknown>
}

function metadataFrom (json: Record<string, unknown>, source: string, issuer: string): IssuerMetadata {
  MetadataDocument ??= metadataDocument()
  const parsed = MetadataDocument.safeParse(json)
  if (!parsed.success) {
    // Field names only: a document's values are not echoed.
    const issue = parsed.error.issues[0]
    const field = issue?.path.join('.') ?? ''
    throw new DiscoveryError(`issuer ${issuer}: metadata at ${source}: "${field}" ${issue?.code === 'custom' ? issue.message : 'is missing or of the wrong type'}`)
  }
  const doc = parsed.data
  if (doc.issuer !== issuer) {
    throw new DiscoveryError(`issuer ${issuer}: the metadata at ${source} is for another issuer; refused (it must name the configured issuer exactly)`)
  }
  const metadata: IssuerMetadata = {
    issuer,
    authorizationResponseIssParameterSupported: doc.authorization_response_iss_parameter_supported === true,
    source
  }
  if (doc.token_endpoint !== undefined) metadata.tokenEndpoint = doc.token_endpoint
  if (doc.authorization_endpoint !== undefined) metadata.authorizationEndpoint = doc.authorization_endpoint
  if (doc.device_authorization_endpoint !== undefined) metadata.deviceAuthorizationEndpoint = doc.device_authorization_endpoint
  if (doc.revocation_endpoint !== undefined) metadata.revocationEndpoint = doc.revocation_endpoint
  if (doc.jwks_uri !== undefined) metadata.jwksUri = doc.jwks_uri
  if (doc.code_challenge_methods_supported !== undefined) metadata.codeChallengeMethodsSupported = doc.code_challenge_methods_supported
  if (doc.token_endpoint_auth_methods_supported !== undefined) metadata.tokenEndpointAuthMethodsSupported = doc.token_endpoint_auth_methods_supported
  return metadata
}

/** RFC 8414 §2: an http(s) URL with no query and no fragment; user-info would put a password in every message. */
function parseIssuer (issuer: string): URL {
  let url: URL
  try {
    url = new URL(issuer)
  } catch {
    throw new DiscoveryError('issuer is not an absolute URL')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new DiscoveryError('issuer must be an http(s) URL')
  if (url.search !== '' || url.hash !== '' || issuer.includes('?') || issuer.includes('#')) throw new DiscoveryError('issuer must have no query and no fragment (RFC 8414 §2)')
  if (url.username !== '' || url.password !== '') throw new DiscoveryError('issuer must have no user-info')
  return url
}

function isHttpUrl (value: string): boolean {
  if (!URL.canParse(value)) return false
  const { protocol } = new URL(value)
  return protocol === 'https:' || protocol === 'http:'
}

function describe (err: unknown): string {
  const e = err as { code?: string, message?: string }
  return e.code ?? e.message ?? 'request failed'
}
