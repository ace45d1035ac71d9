/**
 * `npm run bench [-- --quick] [-- --scenario NAME] [-- --json FILE]`
 *
 * Measures bearer-proxy against baselines started in the same run (the
 * upstream directly, bare @fastify/http-proxy, npm http-proxy), each in its
 * own child process on loopback; the load generator runs in this process.
 * Prints one table per scenario and a summary of the targets.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { parseOptions, THROUGHPUT, type BenchOptions } from './options.js'
import { haveRedisServer, installCleanup, killAll, pinProcesses, prepareServers, ROOT, run, setProxyNodeFlags, stop, watchdog } from './processes.js'
import { coldBurstTable, dpopTable, longStreamTable, replicasTable, rolloverTable, startupTable, targets, targetsTable, throughputTable, type Results } from './report.js'
import { runColdBurst } from './scenarios/cold-burst.js'
import { runDpop } from './scenarios/dpop.js'
import { runLongStream } from './scenarios/long-stream.js'
import { runReplicas } from './scenarios/replicas.js'
import { runRollover } from './scenarios/rollover.js'
import { runStartup } from './scenarios/startup.js'
import { runThroughput } from './scenarios/throughput.js'
import { startEnv, startVariants, stopVariants, verify, type Env } from './variants.js'

const print = (text = ''): void => { process.stdout.write(`${text}\n`) }
const begun = performance.now()
/** Progress goes to stderr, stamped with the seconds since start; the tables go to stdout. */
const progress = (text: string): void => { process.stderr.write(`[${((performance.now() - begun) / 1000).toFixed(1).padStart(5)} s] ${text}\n`) }

function version (pkg: string): string {
  return (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version
}

function newestMtime (dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs)
  }
  return newest
}

/** dist/ must hold a build of the current src/: rebuilt when it is missing or older. */
async function ensureBuild (allowed: boolean): Promise<void> {
  let builtAt = 0
  try { builtAt = statSync(join(ROOT, 'dist/cli.js')).mtimeMs } catch {}
  if (builtAt >= newestMtime(join(ROOT, 'src'))) return
  if (!allowed) {
    if (builtAt === 0) throw new Error('dist/cli.js is missing; run npm run build (or drop --no-build)')
    progress('warning: dist/ is older than src/ (--no-build)')
    return
  }
  progress('building dist/ (src/ changed since the last build)')
  // The build bundles without checking types (npm run typecheck does): the bench measures what it bundled.
  await run('build', process.execPath, [join(ROOT, 'scripts/build.mjs')])
}

async function runThroughputScenarios (env: Env, options: BenchOptions, results: Results): Promise<void> {
  const wanted = THROUGHPUT.filter((s) => options.scenarios.has(s))
  if (wanted.length === 0) return
  const variants = await startVariants(env)
  try {
    for (const variant of variants) await verify(env, variant)
    progress(`verified: ${variants.map((v) => v.name).join(', ')} answer 200 and the upstream sees the expected bearer`)
    for (const scenario of wanted) {
      const result = await runThroughput(scenario, variants, options, progress)
      results.throughput[scenario] = result
      print(throughputTable(result))
      print()
    }
  } finally {
    await stopVariants(variants)
  }
}

async function main (): Promise<void> {
  installCleanup()
  const options = parseOptions(process.argv.slice(2))
  watchdog(options.limitS * 1000)
  print(`bearer-proxy bench (${options.quick ? 'quick' : 'full'}): ${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), node ${process.version}, load average ${loadavg().map((n) => n.toFixed(2)).join(' ')}`)
  const pinning = options.pin ? pinProcesses() : undefined
  print(pinning === undefined
    ? 'processes not pinned: load generator, upstream and proxies share the cores'
    : `pinned with taskset: each proxy variant alone on core ${pinning.proxy}; load generator and upstream on core ${pinning.other}`)
  setProxyNodeFlags(options.proxyNodeFlags)
  if (options.proxyNodeFlags.length > 0) print(`bearer-proxy runs with node flags: ${options.proxyNodeFlags.join(' ')}`)
  print(`load generator: ${options.loader} in the bench process; fastify ${version('fastify')}, @fastify/http-proxy ${version('@fastify/http-proxy')}, @fastify/reply-from ${version('@fastify/reply-from')}, undici ${version('undici')}, http-proxy ${version('http-proxy')}`)
  print()
  await ensureBuild(options.build)
  progress('starting the upstream and the variants')
  const env = await startEnv(prepareServers(['upstream', 'bare-proxy', 'http-proxy']))
  const results: Results = { throughput: {} }
  try {
    await runThroughputScenarios(env, options, results)
    if (options.scenarios.has('dpop')) {
      progress('dpop: a bearer route and a DPoP route of one bearer-proxy, small GETs')
      results.dpop = await runDpop(env, options, progress)
      print(dpopTable(results.dpop))
      print()
    }
    if (options.scenarios.has('rollover')) {
      progress(`rollover: ${options.rollover.durationS} s of load`)
      results.rollover = await runRollover(env, options)
      print(rolloverTable(results.rollover, results.throughput.small?.variants['bearer-proxy']?.p99))
      print()
    }
    if (options.scenarios.has('replicas')) {
      if (haveRedisServer()) {
        results.replicas = await runReplicas(env, options, progress)
        print(replicasTable(results.replicas))
      } else {
        print('replicas on one Redis: skipped, redis-server is not installed (apt-get install redis-server)')
      }
      print()
    }
    if (options.scenarios.has('cold-burst')) {
      progress(`cold burst: ${options.burst} requests`)
      results.coldBurst = await runColdBurst(env, options)
      print(coldBurstTable(results.coldBurst))
      print()
    }
    if (options.scenarios.has('startup')) {
      results.startup = await runStartup(env, options, progress)
      print(startupTable(results.startup))
      print()
    }
    if (options.scenarios.has('long-stream')) {
      progress(`long stream: ${options.longStreamBytes / 1024 / 1024} MiB down, then up`)
      results.longStream = await runLongStream(env, options)
      print(longStreamTable(results.longStream))
      print()
    }
  } finally {
    await stop(env.upstream)
  }
  const list = targets(results, options.longStreamBytes / 1024 / 1024)
  print('summary')
  print(targetsTable(list))
  const wallS = (performance.now() - begun) / 1000
  print()
  print(`wall time ${wallS.toFixed(1)} s; load average now ${loadavg().map((n) => n.toFixed(2)).join(' ')} (other processes on this machine skew the figures)`)
  if (options.jsonFile !== undefined) {
    writeFileSync(options.jsonFile, `${JSON.stringify({
      date: new Date().toISOString(),
      machine: { cores: cpus().length, cpu: cpus()[0]?.model.trim(), node: process.version, loadavg: loadavg() },
      options: { ...options, scenarios: [...options.scenarios] },
      results,
      targets: list,
      wallS
    }, null, 2)}\n`)
    progress(`results written to ${options.jsonFile}`)
  }
}

main().then(() => {
  killAll()
  process.exit(0)
}, (err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).message}\n`)
  killAll()
  process.exit(1)
})
