import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type * as Tls from 'node:tls'
import type { Dispatcher } from 'undici'
import { loadUndici } from './undici.js'

/** A client certificate and extra trusted CAs, as PEM text (`auth.tls`, a route's `tls`). */
export interface TlsClientSettings {
  cert?: string | undefined
  key?: string | undefined
  ca?: string | undefined
}

/**
 * The CAs a connection trusts when `extra` is configured: Node sets the
 * system store aside as soon as a `ca` option is given, so the system CAs
 * (and NODE_EXTRA_CA_CERTS, which Node 20 does not list anywhere) are put
 * back first. `ca` adds trust; it never replaces verification.
 */
function trustedCas (extra: string): string[] {
  // node:tls is loaded only for added CAs: `token` from a stored token never needs it.
  const tls = createRequire(import.meta.url)('node:tls') as typeof Tls
  const lister = (tls as { getCACertificates?: (type: 'default') => string[] }).getCACertificates
  if (lister !== undefined) return [...lister('default'), extra]
  const system = [...tls.rootCertificates]
  const extraFile = process.env.NODE_EXTRA_CA_CERTS
  if (extraFile !== undefined && extraFile !== '') {
    try {
      system.push(readFileSync(extraFile, 'utf8'))
    } catch {
      // Node itself only warns about an unreadable NODE_EXTRA_CA_CERTS; so does not trusting it.
    }
  }
  return [...system, extra]
}

/** The TLS options of a client connection, in the shape node:tls, undici and ws all take. */
export type TlsConnectOptions = Readonly<Pick<Tls.ConnectionOptions, 'rejectUnauthorized' | 'ca' | 'cert' | 'key'>>

/**
 * Connection options presenting the client certificate (RFC 8705 mutual TLS)
 * and trusting the added CAs. Certificates are always verified, stated
 * explicitly so that NODE_TLS_REJECT_UNAUTHORIZED=0 cannot turn it off.
 */
export function tlsConnectOptions (settings: TlsClientSettings = {}): TlsConnectOptions {
  return {
    rejectUnauthorized: true,
    ...(settings.cert === undefined ? {} : { cert: settings.cert }),
    ...(settings.key === undefined ? {} : { key: settings.key }),
    ...(settings.ca === undefined ? {} : { ca: trustedCas(settings.ca) })
  }
}

/**
 * A connection pool of its own for one route's token endpoint requests, made
 * on the first request (undici loads then). The TLS options are read now, so
 * a CA file that cannot be used still shows at start-up.
 */
export function tlsDispatcher (settings: TlsClientSettings): () => Promise<Dispatcher> {
  const connect = tlsConnectOptions(settings)
  let pool: Promise<Dispatcher> | undefined
  return async () => {
    pool ??= loadUndici().then(({ Agent }) => new Agent({ keepAliveTimeout: 10_000, connect: { ...connect } }))
    return await pool
  }
}
