/** Text tables of the bench and its targets. */
import type { ColdBurstResult } from './scenarios/cold-burst.js'
import type { DpopResult } from './scenarios/dpop.js'
import type { LongStreamResult, StreamFigures } from './scenarios/long-stream.js'
import type { ReplicasResult } from './scenarios/replicas.js'
import type { RolloverResult } from './scenarios/rollover.js'
import type { StartupResult } from './scenarios/startup.js'
import type { ThroughputResult } from './scenarios/throughput.js'
import type { ScenarioName } from './options.js'
import { VARIANTS } from './variants.js'

export interface Results {
  throughput: Partial<Record<ScenarioName, ThroughputResult>>
  rollover?: RolloverResult
  replicas?: ReplicasResult
  coldBurst?: ColdBurstResult
  longStream?: LongStreamResult
  dpop?: DpopResult
  startup?: StartupResult
}

export interface Target {
  target: string
  measured: string
  pass: boolean
  /** An aim beyond the target: shown as met or not yet, never as a miss. */
  aim?: boolean
}

/** Peak RSS of bearer-proxy under the 1 MiB scenarios, at most. */
export const PEAK_RSS_TARGET_MIB = 120
/** RSS growth of bearer-proxy over one long stream, below. */
export const LONG_STREAM_GROWTH_TARGET_MIB = 30

export function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)).join('  ').trimEnd()
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

const fixed = (n: number, digits = 1): string => n.toFixed(digits)
const ratio = (n: number): string => `${n.toFixed(2)}×`

export function throughputTable (result: ThroughputResult): string {
  const rows = VARIANTS.flatMap((name) => {
    const s = result.variants[name]
    if (s === undefined) return []
    return [[name, String(Math.round(s.rps)), fixed(s.p50), fixed(s.p99), s.cpuUs === null ? '-' : String(Math.round(s.cpuUs)), s.peakRssMiB === null ? '-' : fixed(s.peakRssMiB), String(s.non2xx), String(s.errors), s.rpsRounds.join(' / ')]]
  })
  const lines = [
    `${result.title}: ${result.connections} connections, ${result.rounds} round(s) × ${result.durationS} s`,
    table(['variant', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'peak RSS MiB', 'non-2xx', 'errors', 'req/s per round'], rows)
  ]
  for (const [base, r] of Object.entries(result.ratios)) {
    lines.push(`bearer-proxy / ${base} (median of per-round ratios): req/s ${ratio(r.rps)}, p99 ${ratio(r.p99)}${r.cpu === undefined ? '' : `, CPU per request ${ratio(1 / r.cpu)} (${ratio(r.cpu)} as efficient)`}`)
  }
  for (const name of VARIANTS) {
    const bad = result.variants[name]?.warmupBad ?? 0
    if (bad > 0) lines.push(`note: ${name} had ${bad} non-2xx answers or errors during warm-ups`)
  }
  return lines.join('\n')
}

export function dpopTable (r: DpopResult): string {
  const row = (name: string, s: DpopResult['bearer']): string[] => [name, String(Math.round(s.rps)), fixed(s.p50), fixed(s.p99), s.cpuUs === null ? '-' : String(Math.round(s.cpuUs)), String(s.non2xx), String(s.errors), s.rpsRounds.join(' / ')]
  return [
    `DPoP vs bearer: one bearer-proxy, a bearer route and a DPoP route (ES256 proof per request), small GETs, ${r.connections} connections, ${r.rounds} round(s) × ${r.durationS} s`,
    table(['route', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'non-2xx', 'errors', 'req/s per round'], [row('bearer', r.bearer), row('dpop', r.dpop)]),
    `dpop / bearer (median of per-round ratios): req/s ${ratio(r.rpsRatio)}${r.cpuRatio === undefined ? '' : `, CPU per request ${ratio(r.cpuRatio)}`}`
  ].join('\n')
}

export function rolloverTable (r: RolloverResult, steadyP99: number | undefined): string {
  return [
    `token rollover: bearer-proxy alone, tokens living ${r.tokenLifetimeS} s (refreshAhead ${r.refreshAhead}), ${r.durationS} s of small GETs`,
    table(['figure', 'value'], [
      ['token requests', String(r.tokenRequests)],
      ['expected ≈ duration / (lifetime × refreshAhead) + 1', fixed(r.expected)],
      [`allowed (one per rollover in ${fixed(r.elapsedS)} s, + 1)`, String(r.allowed)],
      ['non-2xx answers', String(r.non2xx)],
      ['errors', String(r.errors)],
      ['401s from the upstream (expired token sent)', String(r.upstreamRefused)],
      ['req/s', String(Math.round(r.rps))],
      ['p50 ms', fixed(r.p50)],
      ['p99 ms', fixed(r.p99)],
      ['steady-state p99 ms (small GET scenario)', steadyP99 === undefined ? 'n/a' : fixed(steadyP99)],
      ['p99 / steady-state p99', steadyP99 === undefined ? 'n/a' : ratio(r.p99 / steadyP99)]
    ])
  ].join('\n')
}

export function replicasTable (r: ReplicasResult): string {
  const { replicas: many, single: one } = r
  const row = (figure: string, value: (f: typeof many) => string): string[] => [figure, value(many), value(one)]
  return [
    `replicas on one Redis: ${many.processes} bearer-proxies sharing a Redis token store, ${r.connections / many.processes} connections each, vs one with all ${r.connections}; tokens living ${r.tokenLifetimeS} s (refreshAhead ${r.refreshAhead}, minValidity ${r.minValidity}), ${r.settleS} s of small GETs to settle, then ${r.durationS} s measured`,
    table(['figure', `${many.processes} replicas`, '1 process'], [
      row('token requests', (f) => String(f.tokenRequests)),
      row('allowed (one per rollover in the elapsed s, + 1)', (f) => `${f.allowed} in ${fixed(f.elapsedS)} s`),
      row('token requests / (elapsed / (lifetime × refreshAhead))', (f) => fixed(f.perRollover, 2)),
      row('non-2xx answers', (f) => String(f.non2xx)),
      row('errors', (f) => String(f.errors)),
      row('401s from the upstream (expired token sent)', (f) => String(f.upstreamRefused)),
      row('non-2xx answers or errors while settling', (f) => String(f.settlingBad)),
      row('req/s (all processes)', (f) => String(Math.round(f.rps))),
      row('p50 ms (median over processes)', (f) => fixed(f.p50)),
      row('p99 ms (highest over processes)', (f) => fixed(f.p99)),
      [`p99 ${many.processes} replicas / 1 process`, ratio(r.p99Ratio), '']
    ])
  ].join('\n')
}

export function coldBurstTable (r: ColdBurstResult): string {
  return [
    `cold burst: a fresh bearer-proxy, ${r.requests} concurrent requests at once`,
    table(['figure', 'value'], [
      ['token requests', String(r.tokenRequests)],
      ['answered 2xx', `${r.ok} of ${r.requests}`],
      ['answers', Object.entries(r.statuses).map(([k, v]) => `${k}: ${v}`).join(', ')],
      ['all answered within ms', String(Math.round(r.ms))]
    ])
  ].join('\n')
}

export function longStreamTable (r: LongStreamResult): string {
  const row = (name: string, s: StreamFigures): string[] => [
    name, fixed(s.bytes / 1024 / 1024, 0), fixed(s.seconds, 2), fixed(s.mibPerSec, 0),
    s.baselineRssMiB === undefined ? '-' : fixed(s.baselineRssMiB), s.peakRssMiB === undefined ? '-' : fixed(s.peakRssMiB), s.rssGrowthMiB === undefined ? '-' : fixed(s.rssGrowthMiB)
  ]
  return [
    `long stream: bearer-proxy alone, one stream at a time${r.direct === undefined ? '' : ' (direct = the same stream without a proxy)'}`,
    table(['stream', 'MiB', 's', 'MiB/s', 'RSS before MiB', 'RSS peak MiB', 'RSS growth MiB'], [
      ...(r.direct === undefined ? [] : [row('direct down', r.direct.down)]),
      row('bearer-proxy down (GET /stream)', r.down),
      ...(r.direct === undefined ? [] : [row('direct up', r.direct.up)]),
      row('bearer-proxy up (POST /sink, chunked)', r.up),
      row('bearer-proxy down again (same process)', r.downAgain)
    ])
  ].join('\n')
}

export function startupTable (r: StartupResult): string {
  const runs = (ms: number[]): string => ms.map((v) => Math.round(v)).join(' / ')
  return [
    `start-up: whole processes, medians; \`token\` answered from a file store (no request made), ${r.runs} runs each; \`serve\` spawn to port open, ${r.serveRuns} runs each, RSS after ${r.idleS} s idle`,
    table(['process', 'ms', 'peak RSS MiB', 'idle RSS MiB', 'ms per run'], [
      ['node -e 0', fixed(r.nodeBare.ms, 0), fixed(r.nodeBare.peakMiB ?? 0), '-', runs(r.nodeBare.msRuns)],
      ['bearer-proxy token ROUTE', fixed(r.token.ms, 0), fixed(r.token.peakMiB ?? 0), '-', runs(r.token.msRuns)],
      ['bare @fastify/http-proxy, to port open', fixed(r.bare.ms, 0), '-', fixed(r.bare.idleRssMiB), runs(r.bare.msRuns)],
      ['bearer-proxy serve, to port open', fixed(r.serve.ms, 0), '-', fixed(r.serve.idleRssMiB), runs(r.serve.msRuns)]
    ]),
    `token / node -e 0 (median of per-run ratios): ${ratio(r.tokenRatio)}; serve / bare: ${ratio(r.serveRatio)}`
  ].join('\n')
}

/** The targets whose scenarios ran. */
export function targets (results: Results, longStreamMiB: number): Target[] {
  const out: Target[] = []
  const t = results.throughput
  const vsBare = (name: ScenarioName, label: string, factor: number, aim = false): void => {
    const r = t[name]?.ratios.bare
    if (r !== undefined) out.push({ target: `${label}: req/s ≥ ${factor}× bare${aim ? ' (aim)' : ''}`, measured: `${ratio(r.rps)}${r.cpu === undefined ? '' : ` (CPU per request: ${ratio(r.cpu)} as efficient)`}`, pass: r.rps >= factor, ...(aim ? { aim } : {}) })
  }
  vsBare('small', 'small GET', 1)
  vsBare('small', 'small GET', 1.2, true)
  vsBare('1mib-down', '1 MiB response', 1)
  vsBare('1mib-up', '1 MiB upload', 1)
  for (const [name, label] of [['small', 'small GET'], ['1mib-down', '1 MiB response'], ['1mib-up', '1 MiB upload']] as const) {
    const ours = t[name]?.variants['bearer-proxy']
    const bare = t[name]?.variants.bare
    const r = t[name]?.ratios.bare
    if (ours !== undefined && bare !== undefined && r !== undefined) out.push({ target: `${label}: p99 ≤ bare's`, measured: `${fixed(ours.p99)} vs ${fixed(bare.p99)} ms (per round ${ratio(r.p99)})`, pass: r.p99 <= 1 })
  }
  const rss = (['1mib-down', '1mib-up'] as const).map((n) => t[n]?.variants['bearer-proxy']?.peakRssMiB).filter((v): v is number => typeof v === 'number')
  if (rss.length > 0) {
    const bareRss = (['1mib-down', '1mib-up'] as const).map((n) => t[n]?.variants.bare?.peakRssMiB).filter((v): v is number => typeof v === 'number')
    out.push({ target: `peak RSS under 1 MiB load ≤ ${PEAK_RSS_TARGET_MIB} MiB`, measured: `${fixed(Math.max(...rss))} MiB${bareRss.length === 0 ? '' : ` (bare: ${fixed(Math.max(...bareRss))})`}`, pass: Math.max(...rss) <= PEAK_RSS_TARGET_MIB })
  }
  if (results.longStream !== undefined) {
    const growth = Math.max(results.longStream.down.rssGrowthMiB, results.longStream.up.rssGrowthMiB)
    out.push({ target: `${longStreamMiB} MiB streams: RSS growth < ${LONG_STREAM_GROWTH_TARGET_MIB} MiB`, measured: `${fixed(results.longStream.down.rssGrowthMiB)} down, ${fixed(results.longStream.up.rssGrowthMiB)} up (down again: ${fixed(results.longStream.downAgain.rssGrowthMiB)})`, pass: growth < LONG_STREAM_GROWTH_TARGET_MIB })
  }
  if (results.dpop !== undefined) {
    const d = results.dpop.dpop
    out.push({ target: 'dpop route: 0 non-2xx', measured: `${d.non2xx} non-2xx, ${d.errors} errors; req/s ${ratio(results.dpop.rpsRatio)} of bearer`, pass: d.non2xx === 0 && d.errors === 0 })
  }
  if (results.rollover !== undefined) {
    const r = results.rollover
    out.push({ target: 'rollover: 0 non-2xx', measured: `${r.non2xx} non-2xx, ${r.errors} errors`, pass: r.non2xx === 0 && r.errors === 0 })
    out.push({ target: 'rollover: ≤ 1 token request per rollover + 1', measured: `${r.tokenRequests} (allowed ${r.allowed})`, pass: r.tokenRequests <= r.allowed })
  }
  if (results.replicas !== undefined) {
    const r = results.replicas.replicas
    out.push({ target: `replicas: ${r.processes} processes, 0 non-2xx`, measured: `${r.non2xx} non-2xx, ${r.errors} errors`, pass: r.non2xx === 0 && r.errors === 0 })
    out.push({ target: `replicas: ${r.processes} processes, ≤ 1 token request per rollover + 1`, measured: `${r.tokenRequests} (allowed ${r.allowed}; ${fixed(r.perRollover, 2)} per rollover)`, pass: r.tokenRequests <= r.allowed })
  }
  if (results.startup !== undefined) {
    const s = results.startup
    out.push({ target: 'token from the store: wall ≤ 2× node -e 0', measured: `${ratio(s.tokenRatio)} (${fixed(s.token.ms, 0)} vs ${fixed(s.nodeBare.ms, 0)} ms)`, pass: s.tokenRatio <= 2 })
    out.push({ target: 'token from the store: peak RSS ≤ 50 MiB', measured: `${fixed(s.token.peakMiB ?? 0)} MiB (node -e 0: ${fixed(s.nodeBare.peakMiB ?? 0)})`, pass: (s.token.peakMiB ?? Infinity) <= 50 })
    out.push({ target: 'serve ready (port open) ≤ 0.8× bare', measured: `${ratio(s.serveRatio)} (${fixed(s.serve.ms, 0)} vs ${fixed(s.bare.ms, 0)} ms)`, pass: s.serveRatio <= 0.8 })
    out.push({ target: 'serve idle RSS ≤ 60 MiB', measured: `${fixed(s.serve.idleRssMiB)} MiB (bare: ${fixed(s.bare.idleRssMiB)})`, pass: s.serve.idleRssMiB <= 60 })
  }
  if (results.coldBurst !== undefined) {
    const c = results.coldBurst
    out.push({ target: 'cold burst: exactly 1 token request', measured: String(c.tokenRequests), pass: c.tokenRequests === 1 })
    out.push({ target: 'cold burst: all answered 2xx', measured: `${c.ok} of ${c.requests}`, pass: c.ok === c.requests })
  }
  return out
}

export function targetsTable (list: Target[]): string {
  return table(['target', 'measured', 'result'], list.map((t) => [t.target, t.measured, t.aim === true ? (t.pass ? 'met' : 'not yet') : t.pass ? 'PASS' : 'MISS']))
}
