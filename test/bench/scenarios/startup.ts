/**
 * Start-up and memory, whole processes, in one run, runs interleaved so both
 * sides of a ratio meet the same machine load:
 * - `bearer-proxy token ROUTE` answered from the store (a file store holding
 *   the route's token: no request is made) against `node -e 0`: wall time
 *   from spawn to exit, and peak RSS;
 * - `bearer-proxy serve` against the bare @fastify/http-proxy script: from
 *   spawn to the port accepting connections, then the RSS once idle.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { BenchOptions } from '../options.js'
import { freePort, peakRecorder, rssBytes, spawnUntilPort, stop, tempDir, timeNode, ROOT } from '../processes.js'
import { counts, type Env } from '../variants.js'

const MIB = 1024 * 1024

export interface ProcessFigures {
  /** Median over the runs, ms. */
  ms: number
  msRuns: number[]
  /** Median peak RSS (VmHWM), MiB; only for the commands run to their end. */
  peakMiB?: number
}

export interface StartupResult {
  runs: number
  serveRuns: number
  idleS: number
  nodeBare: ProcessFigures
  token: ProcessFigures
  /** token / node -e 0, median of the per-run ratios. */
  tokenRatio: number
  serve: ProcessFigures & { idleRssMiB: number }
  bare: ProcessFigures & { idleRssMiB: number }
  /** serve / bare, median of the per-run ratios. */
  serveRatio: number
}

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/** A run to its end; with `peak`, under the peak recorder (its own runs: the recorder is not in the timed ones). */
async function timed (name: string, args: string[], peak?: string): Promise<{ ms: number, stdout: string, peakBytes?: number }> {
  if (peak === undefined) return await timeNode(name, args)
  const file = join(tempDir(), 'peak')
  const result = await timeNode(name, ['--require', peak, ...args], 15_000, { BENCH_PEAK_FILE: file })
  const peakBytes = Number(readFileSync(file, 'utf8'))
  rmSync(file, { force: true })
  return { ...result, peakBytes }
}

export async function runStartup (env: Env, options: BenchOptions, progress: (text: string) => void): Promise<StartupResult> {
  const { runs, serveRuns, idleS } = options.startup
  const dir = tempDir()
  const cli = join(ROOT, 'dist/cli.js')

  // `token`: a client_credentials route on a file store, its token stored by a first run.
  const tokenConfig = join(dir, 'token.json')
  writeFileSync(tokenConfig, JSON.stringify({
    store: { type: 'file', dir: join(dir, 'state') },
    routes: { bench: { upstream: env.upstreamUrl, auth: { type: 'client_credentials', tokenUrl: env.tokenUrl(3600), clientId: 'bench', clientSecret: 'bench-secret' } } }
  }, null, 2))
  const tokenArgs = [cli, 'token', 'bench', '-c', tokenConfig]
  const first = await timeNode('token', tokenArgs)
  const stored = first.stdout.trim()
  if (stored === '') throw new Error('startup: `token` printed nothing')
  const before = await counts(env)

  progress(`startup: ${runs} runs each of \`token\` from the store and \`node -e 0\`, interleaved`)
  const peak = peakRecorder()
  const nodeMs: number[] = []
  const tokenMs: number[] = []
  const nodePeak: number[] = []
  const tokenPeak: number[] = []
  for (let i = 0; i < runs; i++) {
    nodeMs.push((await timed('node -e 0', ['-e', '0'])).ms)
    const token = await timed('token', tokenArgs)
    if (token.stdout.trim() !== stored) throw new Error('startup: `token` printed another token than the stored one')
    tokenMs.push(token.ms)
  }
  // Peaks in runs of their own, a third as many: the recorder's require is not in the timed runs.
  for (let i = 0; i < Math.max(3, Math.ceil(runs / 3)); i++) {
    nodePeak.push((await timed('node -e 0', ['-e', '0'], peak)).peakBytes ?? 0)
    tokenPeak.push((await timed('token', tokenArgs, peak)).peakBytes ?? 0)
  }
  const after = await counts(env)
  if (after.tokenRequests !== before.tokenRequests) throw new Error(`startup: \`token\` made ${after.tokenRequests - before.tokenRequests} token requests; it should answer from the store`)

  progress(`startup: ${serveRuns} runs each of \`serve\` and bare @fastify/http-proxy, spawn to port open, then ${idleS} s idle`)
  const serveMs: number[] = []
  const bareMs: number[] = []
  const serveIdle: number[] = []
  const bareIdle: number[] = []
  for (let i = 0; i < serveRuns; i++) {
    const port = await freePort()
    const serveConfig = join(dir, `serve-${i}.json`)
    writeFileSync(serveConfig, JSON.stringify({
      listen: { host: '127.0.0.1', port },
      admin: false,
      routes: { bench: { prefix: '/bp', upstream: env.upstreamUrl, auth: { type: 'client_credentials', tokenUrl: env.tokenUrl(3600), clientId: 'bench', clientSecret: 'bench-secret' } } }
    }, null, 2))
    const serve = await spawnUntilPort('bearer-proxy serve', [cli, 'serve', '-c', serveConfig], port)
    serveMs.push(serve.readyMs)
    await new Promise((resolve) => setTimeout(resolve, idleS * 1000))
    serveIdle.push(rssBytes(serve.pid))
    await stop(serve)

    const barePort = await freePort()
    const bare = await spawnUntilPort('bare', [join(env.serversDir, 'bare-proxy.mjs'), env.upstreamUrl, String(barePort)], barePort)
    bareMs.push(bare.readyMs)
    await new Promise((resolve) => setTimeout(resolve, idleS * 1000))
    bareIdle.push(rssBytes(bare.pid))
    await stop(bare)
  }

  const mib = (bytes: number[]): number => median(bytes) / MIB
  return {
    runs,
    serveRuns,
    idleS,
    nodeBare: { ms: median(nodeMs), msRuns: nodeMs, peakMiB: mib(nodePeak) },
    token: { ms: median(tokenMs), msRuns: tokenMs, peakMiB: mib(tokenPeak) },
    tokenRatio: median(tokenMs.map((ms, i) => ms / (nodeMs[i] as number))),
    serve: { ms: median(serveMs), msRuns: serveMs, idleRssMiB: mib(serveIdle) },
    bare: { ms: median(bareMs), msRuns: bareMs, idleRssMiB: mib(bareIdle) },
    serveRatio: median(serveMs.map((ms, i) => ms / (bareMs[i] as number)))
  }
}
