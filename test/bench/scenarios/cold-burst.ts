/**
 * Cold burst: a fresh bearer-proxy that holds no token gets many concurrent
 * requests at once; single flight means exactly one token request.
 */
import { burst } from '../http-client.js'
import type { BenchOptions } from '../options.js'
import { stop } from '../processes.js'
import { counts, startBearerProxy, verify, type Env } from '../variants.js'

export interface ColdBurstResult {
  requests: number
  ok: number
  /** Answers by status (or error) */
  statuses: Record<string, number>
  ms: number
  tokenRequests: number
}

export async function runColdBurst (env: Env, options: BenchOptions): Promise<ColdBurstResult> {
  const before = await counts(env)
  const proxy = await startBearerProxy(env, { ttl: 3600, refreshAhead: 0.8 })
  try {
    // Nothing may reach the proxy before the burst, or it would not be cold; it is verified after.
    const result = await burst(`${proxy.base}/small`, options.burst, 60_000)
    const after = await counts(env)
    await verify(env, proxy)
    return { requests: options.burst, ok: result.ok, statuses: result.statuses, ms: result.ms, tokenRequests: after.tokenRequests - before.tokenRequests }
  } finally {
    await stop(proxy.process)
  }
}
