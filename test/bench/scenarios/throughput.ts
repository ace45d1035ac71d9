/**
 * Request rate, latency and memory of every variant for one request shape,
 * interleaved: each round runs every variant once, in rotating order, each
 * measurement after a short warm-up.
 */
import { runLoad, type LoadResult } from '../load.js'
import type { BenchOptions, ScenarioName } from '../options.js'
import { cpuMicros, RssSampler } from '../processes.js'
import type { Variant, VariantName } from '../variants.js'

const MIB = 1024 * 1024
const UPLOAD_BODY = Buffer.alloc(MIB, 'x')

export const SHAPES: Record<string, { title: string, path: string, method: 'GET' | 'POST', body?: Buffer }> = {
  small: { title: 'small GET (~200 B JSON)', path: '/small', method: 'GET' },
  '1mib-down': { title: '1 MiB response (GET /1mib)', path: '/1mib', method: 'GET' },
  '1mib-up': { title: '1 MiB upload (POST /upload)', path: '/upload', method: 'POST', body: UPLOAD_BODY }
}

export interface VariantStats {
  /** Median over rounds. */
  rps: number
  rpsRounds: number[]
  /** Medians over rounds, ms. */
  p50: number
  p99: number
  /** CPU time of the variant's process per request (median over rounds), µs; null for `direct` or without /proc. */
  cpuUs: number | null
  /** Highest RSS seen over all rounds; null for `direct` (no process of its own). */
  peakRssMiB: number | null
  non2xx: number
  errors: number
  /** non-2xx answers and errors during warm-ups (not in the figures above). */
  warmupBad: number
}

export interface Ratios {
  rps: number
  p99: number
  /** Their CPU per request over ours: above 1 means bearer-proxy spends less. */
  cpu?: number
}

export interface ThroughputResult {
  scenario: ScenarioName
  title: string
  connections: number
  rounds: number
  durationS: number
  variants: Partial<Record<VariantName, VariantStats>>
  /** bearer-proxy / baseline: medians of the per-round ratios. */
  ratios: { bare?: Ratios, 'http-proxy'?: Ratios }
}

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

export async function runThroughput (scenario: ScenarioName, variants: Variant[], options: BenchOptions, progress: (line: string) => void): Promise<ThroughputResult> {
  const shape = SHAPES[scenario]
  if (shape === undefined) throw new Error(`not a throughput scenario: ${scenario}`)
  interface Runs { loads: LoadResult[], cpuUs: number[], peak: number, warmupBad: number }
  const runs = new Map<VariantName, Runs>(variants.map((v) => [v.name, { loads: [], cpuUs: [], peak: 0, warmupBad: 0 }]))
  // A process needs seconds of a new request shape before its young generation and compiled code
  // settle (1 MiB answers: over 15 s on a fresh bearer-proxy); the short warm-up per round does not cover that.
  const specFor = (variant: Variant) => ({ url: variant.base + shape.path, method: shape.method, headers: variant.headers, connections: options.connections, ...(shape.body === undefined ? {} : { body: shape.body }) })
  for (const variant of variants) {
    const settle = await runLoad(options.loader, { ...specFor(variant), durationS: options.settleS })
    const record = runs.get(variant.name) as Runs
    record.warmupBad += settle.non2xx + settle.errors
  }
  for (let round = 0; round < options.rounds; round++) {
    const order = [...variants.slice(round % variants.length), ...variants.slice(0, round % variants.length)]
    for (const variant of order) {
      const spec = specFor(variant)
      const record = runs.get(variant.name) as Runs
      const warm = await runLoad(options.loader, { ...spec, durationS: options.warmupS })
      record.warmupBad += warm.non2xx + warm.errors
      const pid = variant.process?.pid
      const sampler = pid === undefined ? undefined : new RssSampler(pid)
      const cpuBefore = pid === undefined ? undefined : cpuMicros(pid)
      const load = await runLoad(options.loader, { ...spec, durationS: options.durationS })
      const cpuAfter = pid === undefined ? undefined : cpuMicros(pid)
      record.peak = Math.max(record.peak, sampler?.stop() ?? 0)
      record.loads.push(load)
      if (cpuBefore !== undefined && cpuAfter !== undefined && load.requests > 0) record.cpuUs.push((cpuAfter - cpuBefore) / load.requests)
      progress(`  ${scenario} round ${round + 1}/${options.rounds} ${variant.name.padEnd(12)} ${Math.round(load.rps)} req/s, p99 ${load.p99} ms`)
    }
  }
  const stats: Partial<Record<VariantName, VariantStats>> = {}
  for (const variant of variants) {
    const { loads, cpuUs, peak, warmupBad } = runs.get(variant.name) as Runs
    stats[variant.name] = {
      rps: median(loads.map((l) => l.rps)),
      rpsRounds: loads.map((l) => Math.round(l.rps)),
      p50: median(loads.map((l) => l.p50)),
      p99: median(loads.map((l) => l.p99)),
      cpuUs: cpuUs.length === 0 ? null : median(cpuUs),
      peakRssMiB: variant.process === undefined ? null : peak / MIB,
      non2xx: loads.reduce((sum, l) => sum + l.non2xx, 0),
      errors: loads.reduce((sum, l) => sum + l.errors, 0),
      warmupBad
    }
  }
  // Ratios are medians of per-round ratios: within a round the variants run back to back, so a
  // slow spell of the machine hits both sides of a ratio, where it would skew one side of a ratio of medians.
  const ours = runs.get('bearer-proxy')
  const ratios: ThroughputResult['ratios'] = {}
  for (const base of ['bare', 'http-proxy'] as const) {
    const theirs = runs.get(base)
    if (ours === undefined || theirs === undefined) continue
    const perRound = (pick: (load: LoadResult) => number): number => median(ours.loads.map((l, i) => pick(l) / pick(theirs.loads[i] as LoadResult)))
    const cpu = ours.cpuUs.length === options.rounds && theirs.cpuUs.length === options.rounds
      ? median(ours.cpuUs.map((c, i) => (theirs.cpuUs[i] as number) / c))
      : undefined
    ratios[base] = { rps: perRound((l) => l.rps), p99: perRound((l) => l.p99), ...(cpu === undefined ? {} : { cpu }) }
  }
  return { scenario, title: shape.title, connections: options.connections, rounds: options.rounds, durationS: options.durationS, variants: stats, ratios }
}
