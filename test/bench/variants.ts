/**
 * What the bench measures: the upstream + token server child, and the four
 * ways of reaching the upstream with a bearer header (direct, bare
 * @fastify/http-proxy, npm http-proxy, bearer-proxy), each verified to
 * inject the expected header before it is measured.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getJson, request } from './http-client.js'
import { freePort, spawnBearerProxy, spawnJsonServer, stop, tempDir, type Spawned } from './processes.js'

export const STATIC_AUTH = 'Bearer static-token'
export const VARIANTS = ['direct', 'bare', 'http-proxy', 'bearer-proxy'] as const
export type VariantName = typeof VARIANTS[number]

export interface Env {
  upstream: Spawned
  /** http://127.0.0.1:PORT of the upstream API. */
  upstreamUrl: string
  /** The token endpoint, issuing tokens that live `ttl` seconds. */
  tokenUrl: (ttl: number) => string
  serversDir: string
}

export interface Counts {
  /** Tokens issued so far. */
  tokenRequests: number
  lastIssued: string | null
  /** Requests the upstream refused with 401 (no, unknown or expired token). */
  refused: number
}

export interface Variant {
  name: VariantName
  /** Base URL: the upstream's paths are appended to it. */
  base: string
  /** Headers the load generator sends (only `direct` sends the bearer itself). */
  headers: Record<string, string>
  /** The process measured; none for `direct`. */
  process: Spawned | undefined
}

export async function startEnv (serversDir: string): Promise<Env> {
  const upstream = await spawnJsonServer<{ port: number, tokenPort: number }>('upstream', join(serversDir, 'upstream.mjs'))
  const tokenBase = `http://127.0.0.1:${upstream.info.tokenPort}`
  return {
    upstream,
    upstreamUrl: `http://127.0.0.1:${upstream.info.port}`,
    tokenUrl: (ttl) => `${tokenBase}/token?ttl=${ttl}`,
    serversDir
  }
}

export async function counts (env: Env): Promise<Counts> {
  return await getJson<Counts>(`${env.upstreamUrl}/_count`)
}

/** Where a bearer-proxy keeps its tokens: its own memory (the default), or a Redis shared with other processes. */
export interface RedisStore { type: 'redis', url: string, keyPrefix: string }

/** A fresh bearer-proxy process: one client_credentials route `/bp`, admin off, default log level. */
export async function startBearerProxy (env: Env, tokens: { ttl: number, refreshAhead: number, minValidity?: number }, store?: RedisStore): Promise<Variant> {
  const port = await freePort()
  const file = join(tempDir(), 'bearer-proxy.json')
  writeFileSync(file, JSON.stringify({
    listen: { host: '127.0.0.1', port },
    admin: false,
    ...(store === undefined ? {} : { store }),
    tokens: { refreshAhead: tokens.refreshAhead, ...(tokens.minValidity === undefined ? {} : { minValidity: tokens.minValidity }) },
    routes: {
      bench: {
        prefix: '/bp',
        upstream: env.upstreamUrl,
        auth: { type: 'client_credentials', tokenUrl: env.tokenUrl(tokens.ttl), clientId: 'bench', clientSecret: 'bench-secret' }
      }
    }
  }, null, 2))
  const spawned = await spawnBearerProxy(file, port)
  return { name: 'bearer-proxy', base: `http://127.0.0.1:${port}/bp`, headers: {}, process: spawned }
}

export async function startVariants (env: Env, names: readonly VariantName[] = VARIANTS): Promise<Variant[]> {
  const start = async (name: VariantName): Promise<Variant> => {
    switch (name) {
      case 'direct':
        return { name, base: env.upstreamUrl, headers: { authorization: STATIC_AUTH }, process: undefined }
      case 'bare': {
        const spawned = await spawnJsonServer<{ port: number }>('bare', join(env.serversDir, 'bare-proxy.mjs'), [env.upstreamUrl], 'proxy')
        return { name, base: `http://127.0.0.1:${spawned.info.port}/bare`, headers: {}, process: spawned }
      }
      case 'http-proxy': {
        const spawned = await spawnJsonServer<{ port: number }>('http-proxy', join(env.serversDir, 'http-proxy.mjs'), [env.upstreamUrl], 'proxy')
        return { name, base: `http://127.0.0.1:${spawned.info.port}`, headers: {}, process: spawned }
      }
      case 'bearer-proxy':
        return await startBearerProxy(env, { ttl: 3600, refreshAhead: 0.8 })
    }
  }
  return await Promise.all(names.map(start))
}

export async function stopVariants (variants: Variant[]): Promise<void> {
  await Promise.all(variants.map(async (v) => await stop(v.process)))
}

/**
 * GET /small through the variant must answer 200, and the upstream must have
 * seen `Authorization: Bearer <expected>`: the static token, or for
 * bearer-proxy the last token the token server issued.
 */
export async function verify (env: Env, variant: Variant): Promise<void> {
  const answer = await request(`${variant.base}/small`, { headers: variant.headers })
  if (answer.status !== 200) throw new Error(`verification failed: ${variant.name} answered GET /small with ${answer.status}: ${answer.body.slice(0, 300)}`)
  const { authorization } = await getJson<{ authorization: string | null }>(`${env.upstreamUrl}/_auth`)
  let expected = STATIC_AUTH
  if (variant.name === 'bearer-proxy') {
    const { lastIssued } = await counts(env)
    if (lastIssued === null) throw new Error('verification failed: bearer-proxy answered 200 but the token server issued no token')
    expected = `Bearer ${lastIssued}`
  }
  if (authorization !== expected) {
    throw new Error(`verification failed: through ${variant.name} the upstream saw Authorization ${authorization === null ? '(none)' : `"${authorization.slice(0, 24)}…"`}, expected "${expected.slice(0, 24)}…"`)
  }
}
