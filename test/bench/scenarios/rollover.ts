/**
 * Token rollover under load: a fresh bearer-proxy whose tokens live a couple
 * of seconds, under small-GET load; counts the token requests it makes and
 * the answers that were not 2xx.
 */
import { runLoad } from '../load.js'
import type { BenchOptions } from '../options.js'
import { stop } from '../processes.js'
import { counts, startBearerProxy, verify, type Env } from '../variants.js'

export interface RolloverResult {
  durationS: number
  tokenLifetimeS: number
  refreshAhead: number
  /** From the first token to the end of the load, s. */
  elapsedS: number
  tokenRequests: number
  /** ≈ duration / (lifetime × refreshAhead), plus the initial one. */
  expected: number
  /** One per possible rollover in `elapsedS`, plus the initial one. */
  allowed: number
  rps: number
  p50: number
  p99: number
  non2xx: number
  errors: number
  /** 401s the upstream gave (an expired token reached it; the proxy then replays). */
  upstreamRefused: number
}

export async function runRollover (env: Env, options: BenchOptions): Promise<RolloverResult> {
  const { durationS, tokenLifetimeS, refreshAhead } = options.rollover
  const before = await counts(env)
  // The margin is never shrunk to fit a token: a 2 s token needs one smaller than the default 30 s to be usable at all.
  const proxy = await startBearerProxy(env, { ttl: tokenLifetimeS, refreshAhead, minValidity: tokenLifetimeS / 10 })
  try {
    const started = performance.now()
    await verify(env, proxy)
    const load = await runLoad(options.loader, { url: `${proxy.base}/small`, method: 'GET', headers: {}, connections: options.connections, durationS })
    const elapsedS = (performance.now() - started) / 1000
    const after = await counts(env)
    const interval = tokenLifetimeS * refreshAhead
    return {
      durationS,
      tokenLifetimeS,
      refreshAhead,
      elapsedS,
      tokenRequests: after.tokenRequests - before.tokenRequests,
      expected: durationS / interval + 1,
      allowed: Math.floor(elapsedS / interval) + 1,
      rps: load.rps,
      p50: load.p50,
      p99: load.p99,
      non2xx: load.non2xx,
      errors: load.errors,
      upstreamRefused: after.refused - before.refused
    }
  } finally {
    await stop(proxy.process)
  }
}
