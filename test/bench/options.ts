/** Command line of `npm run bench`: mode, scenarios, output. */
import { parseArgs } from 'node:util'
import { detectLoader, type Loader } from './load.js'

export const SCENARIOS = ['small', '1mib-down', '1mib-up', 'dpop', 'rollover', 'replicas', 'cold-burst', 'long-stream', 'startup'] as const
export type ScenarioName = typeof SCENARIOS[number]
export const THROUGHPUT: readonly ScenarioName[] = ['small', '1mib-down', '1mib-up']

export interface BenchOptions {
  quick: boolean
  scenarios: Set<ScenarioName>
  loader: Loader
  jsonFile: string | undefined
  build: boolean
  /** Proxy variants alone on core 0, load generator and upstream on the others (when taskset is there). */
  pin: boolean
  /** Throughput scenarios: rounds, each running every variant once. */
  rounds: number
  durationS: number
  warmupS: number
  /** Once per scenario and variant, before the rounds: heap sizes and compiled code settle for the new request shape. */
  settleS: number
  connections: number
  rollover: { durationS: number, tokenLifetimeS: number, refreshAhead: number }
  /** bearer-proxy processes sharing one Redis in the replicas scenario (rollover's tokens and duration). */
  replicas: number
  burst: number
  longStreamBytes: number
  /** `token` and `node -e 0` runs each; `serve` and bare runs each; seconds idle before a server's RSS is read. */
  startup: { runs: number, serveRuns: number, idleS: number }
  /** The whole run is aborted past this. */
  limitS: number
  /**
   * Node flags for the proxies the load scenarios start (`--proxy-node-flags`, split at
   * whitespace: no spaces inside one flag's value), e.g. `--max-semi-space-size=2`; none by default.
   */
  proxyNodeFlags: string[]
}

export const USAGE = `Usage: npm run bench -- [--quick] [--scenario NAME[,NAME…]] [--json FILE] [--loader autocannon|wrk] [--no-build] [--no-pin] [--proxy-node-flags='FLAGS']
Scenarios: ${SCENARIOS.join(', ')}`

export function parseOptions (argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      scenario: { type: 'string', multiple: true },
      json: { type: 'string' },
      loader: { type: 'string' },
      'no-build': { type: 'boolean', default: false },
      'no-pin': { type: 'boolean', default: false },
      'proxy-node-flags': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    process.exit(0)
  }
  const names = (values.scenario ?? [...SCENARIOS]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '')
  for (const name of names) {
    if (!(SCENARIOS as readonly string[]).includes(name)) throw new Error(`unknown scenario "${name}"\n${USAGE}`)
  }
  if (values.loader !== undefined && values.loader !== 'autocannon' && values.loader !== 'wrk') throw new Error(`--loader must be autocannon or wrk\n${USAGE}`)
  const quick = values.quick
  return {
    quick,
    scenarios: new Set(names as ScenarioName[]),
    loader: (values.loader as Loader | undefined) ?? detectLoader(),
    jsonFile: values.json,
    build: !values['no-build'],
    pin: !values['no-pin'],
    rounds: quick ? 1 : 7,
    durationS: quick ? 2.5 : 4,
    warmupS: quick ? 0.5 : 1,
    settleS: quick ? 1 : 6,
    connections: 50,
    rollover: { durationS: quick ? 6 : 20, tokenLifetimeS: 2, refreshAhead: 0.8 },
    replicas: 5,
    burst: 1000,
    longStreamBytes: (quick ? 256 : 1024) * 1024 * 1024,
    startup: { runs: quick ? 9 : 21, serveRuns: quick ? 3 : 7, idleS: quick ? 1 : 3 },
    limitS: quick ? 180 : 900,
    proxyNodeFlags: (values['proxy-node-flags'] ?? '').split(/\s+/).filter((f) => f !== '')
  }
}
