/**
 * Replicas on one Redis: several bearer-proxy processes sharing a Redis token
 * store, tokens living a couple of seconds, small-GET load spread over all of
 * them; counts the token requests they make together (one per rollover is the
 * point of a shared store) and the answers that were not 2xx. Then one process
 * with the same store under the same load, for latency.
 */
import { runLoad, type LoadResult } from '../load.js'
import type { BenchOptions } from '../options.js'
import { spawnRedis, stop } from '../processes.js'
import { counts, startBearerProxy, stopVariants, verify, type Env, type Variant } from '../variants.js'

export interface LoadFigures {
  processes: number
  /** From the first token to the end of the load, s. */
  elapsedS: number
  tokenRequests: number
  /** One per possible rollover in `elapsedS`, plus the initial one. */
  allowed: number
  /** token requests / (elapsed / (lifetime × refreshAhead)): 1 when every rollover costs exactly one. */
  perRollover: number
  /** Summed over the processes. */
  rps: number
  /** Median of the processes' p50, ms. */
  p50: number
  /** The highest of the processes' p99, ms. */
  p99: number
  non2xx: number
  errors: number
  /** 401s the upstream gave (an expired token reached it; the proxy then replays). */
  upstreamRefused: number
  /** non-2xx answers and errors while settling (not in the figures above). */
  settlingBad: number
}

export interface ReplicasResult {
  durationS: number
  tokenLifetimeS: number
  refreshAhead: number
  minValidity: number
  connections: number
  /** Load before the measured part, s: counted for the token requests, not for the latencies. */
  settleS: number
  replicas: LoadFigures
  single: LoadFigures
  /** replicas' p99 / the single process's p99. */
  p99Ratio: number
}

/**
 * Starts `processes` bearer-proxies on the store, checks each injects the
 * token the token server issued last (so the later ones took the first one's
 * token from Redis), then runs one load per process at once, the connections
 * split between them.
 */
async function measure (env: Env, options: BenchOptions, processes: number, store: { url: string, keyPrefix: string }): Promise<LoadFigures> {
  const { durationS, tokenLifetimeS, refreshAhead } = options.rollover
  const minValidity = tokenLifetimeS / 10
  const before = await counts(env)
  const started: Variant[] = []
  try {
    // One at a time: a failed start leaves nothing unstopped behind.
    for (let i = 0; i < processes; i++) {
      started.push(await startBearerProxy(env, { ttl: tokenLifetimeS, refreshAhead, minValidity }, { type: 'redis', ...store }))
    }
    const begun = performance.now()
    for (const proxy of started) await verify(env, proxy)
    const each = Math.max(1, Math.floor(options.connections / processes))
    const loadAll = async (seconds: number): Promise<LoadResult[]> => await Promise.all(started.map(async (proxy) =>
      await runLoad(options.loader, { url: `${proxy.base}/small`, method: 'GET', headers: {}, connections: each, durationS: seconds })))
    // Every process first settles (compiled code, heap) under the same load, so the latencies compare warm processes;
    // the token requests are counted over the settling too.
    const settling = await loadAll(options.settleS)
    const loads = await loadAll(durationS)
    const elapsedS = (performance.now() - begun) / 1000
    const after = await counts(env)
    const interval = tokenLifetimeS * refreshAhead
    const tokenRequests = after.tokenRequests - before.tokenRequests
    const p50s = loads.map((l) => l.p50).sort((a, b) => a - b)
    return {
      processes,
      elapsedS,
      tokenRequests,
      allowed: Math.floor(elapsedS / interval) + 1,
      perRollover: tokenRequests / (elapsedS / interval),
      rps: loads.reduce((sum, l) => sum + l.rps, 0),
      p50: p50s[Math.floor(p50s.length / 2)] as number,
      p99: Math.max(...loads.map((l) => l.p99)),
      non2xx: loads.reduce((sum, l) => sum + l.non2xx, 0),
      errors: loads.reduce((sum, l) => sum + l.errors, 0),
      upstreamRefused: after.refused - before.refused,
      settlingBad: settling.reduce((sum, l) => sum + l.non2xx + l.errors, 0)
    }
  } finally {
    await stopVariants(started)
  }
}

export async function runReplicas (env: Env, options: BenchOptions, progress: (text: string) => void): Promise<ReplicasResult> {
  const { durationS, tokenLifetimeS, refreshAhead } = options.rollover
  const redis = await spawnRedis()
  try {
    progress(`replicas: redis-server (pid ${redis.pid}) at ${redis.url}; ${options.replicas} bearer-proxies, ${options.settleS} + ${durationS} s of load`)
    const replicas = await measure(env, options, options.replicas, { url: redis.url, keyPrefix: 'bench:' })
    progress(`replicas: one bearer-proxy on the same Redis, ${options.settleS} + ${durationS} s of load`)
    // Its own prefix: it starts cold, as the replicas did, and counts only its own token requests.
    const single = await measure(env, options, 1, { url: redis.url, keyPrefix: 'bench-single:' })
    return {
      durationS,
      tokenLifetimeS,
      refreshAhead,
      minValidity: tokenLifetimeS / 10,
      connections: options.connections,
      settleS: options.settleS,
      replicas,
      single,
      p99Ratio: replicas.p99 / single.p99
    }
  } finally {
    await stop(redis)
  }
}
