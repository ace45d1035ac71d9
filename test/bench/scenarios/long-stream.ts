/**
 * Long streams through a fresh bearer-proxy: a large body down, then one up,
 * then down again in the same process, with the proxy's RSS growth (peak
 * during the stream − RSS just before it). The first stream also pays what a
 * process does once (V8 tiers undici's WebAssembly HTTP parser up, about 30
 * MiB of compiler memory for a moment); the second one down does not.
 * The same streams straight to the upstream first (not in quick mode) give the client's own ceiling.
 */
import { download, upload, type Transfer } from '../http-client.js'
import type { BenchOptions } from '../options.js'
import { RssSampler, rssBytes, stop } from '../processes.js'
import { startBearerProxy, STATIC_AUTH, verify, type Env } from '../variants.js'

const MIB = 1024 * 1024
/** A stall this long means something is wrong; a healthy stream moves far faster. */
const STALL_MS = 30_000

export interface StreamFigures {
  bytes: number
  seconds: number
  mibPerSec: number
  /** Of the proxy; absent for the direct streams. */
  baselineRssMiB?: number
  peakRssMiB?: number
  rssGrowthMiB?: number
}

export interface LongStreamResult {
  /** Not in quick mode. */
  direct?: { down: StreamFigures, up: StreamFigures }
  down: Required<StreamFigures>
  up: Required<StreamFigures>
  /** The same stream down once more, in the same process. */
  downAgain: Required<StreamFigures>
}

function figures ({ bytes, seconds }: Transfer): StreamFigures {
  return { bytes, seconds, mibPerSec: bytes / MIB / seconds }
}

async function measure (pid: number, transfer: () => Promise<Transfer>): Promise<Required<StreamFigures>> {
  const baseline = rssBytes(pid)
  const sampler = new RssSampler(pid)
  const result = await transfer()
  const peak = sampler.stop()
  return { ...figures(result), baselineRssMiB: baseline / MIB, peakRssMiB: peak / MIB, rssGrowthMiB: (peak - baseline) / MIB }
}

/** Streams `bytes` down from `base`/stream and up to `base`/sink, checking both arrived whole. */
function streams (base: string, bytes: number, headers: Record<string, string>): { down: () => Promise<Transfer>, up: () => Promise<Transfer> } {
  return {
    down: async () => {
      const result = await download(`${base}/stream?bytes=${bytes}`, STALL_MS, headers)
      if (result.status !== 200 || result.bytes !== bytes) throw new Error(`long stream down (${base}): status ${result.status}, ${result.bytes} of ${bytes} bytes`)
      return result
    },
    up: async () => {
      const result = await upload(`${base}/sink`, bytes, STALL_MS, headers)
      const counted = result.status === 200 ? (JSON.parse(result.answer) as { bytes: number }).bytes : -1
      if (counted !== bytes) throw new Error(`long stream up (${base}): status ${result.status}, upstream counted ${counted} of ${bytes} bytes: ${result.answer.slice(0, 200)}`)
      return result
    }
  }
}

export async function runLongStream (env: Env, options: BenchOptions): Promise<LongStreamResult> {
  const bytes = options.longStreamBytes
  let direct: LongStreamResult['direct']
  if (!options.quick) {
    const straight = streams(env.upstreamUrl, bytes, { authorization: STATIC_AUTH })
    direct = { down: figures(await straight.down()), up: figures(await straight.up()) }
  }
  const proxy = await startBearerProxy(env, { ttl: 3600, refreshAhead: 0.8 })
  const pid = (proxy.process as { pid: number }).pid
  try {
    await verify(env, proxy)
    const proxied = streams(proxy.base, bytes, {})
    const down = await measure(pid, proxied.down)
    const up = await measure(pid, proxied.up)
    const downAgain = await measure(pid, proxied.down)
    return { direct, down, up, downAgain }
  } finally {
    await stop(proxy.process)
  }
}
