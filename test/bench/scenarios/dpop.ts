/**
 * DPoP cost: one bearer-proxy process with two client_credentials routes to
 * the same upstream, `/bp` sending a bearer token and `/dp` a DPoP-bound one
 * with a proof signed per request (ES256, jose). Small GETs, the two routes
 * measured in turn within each round, so the ratio compares like with like;
 * the process's CPU time per request is read around each measurement (only
 * one route is loaded at a time). The upstream checks the token, not the proof.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getJson, request } from '../http-client.js'
import { runLoad, type LoadResult } from '../load.js'
import type { BenchOptions } from '../options.js'
import { cpuMicros, freePort, spawnBearerProxy, stop, tempDir } from '../processes.js'
import type { Env } from '../variants.js'
import { median } from './throughput.js'

export interface DpopRouteStats {
  rps: number
  rpsRounds: number[]
  p50: number
  p99: number
  /** CPU time of the process per request, µs (median over rounds); null without /proc. */
  cpuUs: number | null
  non2xx: number
  errors: number
}

export interface DpopResult {
  connections: number
  rounds: number
  durationS: number
  bearer: DpopRouteStats
  dpop: DpopRouteStats
  /** DPoP / bearer, medians of the per-round ratios. */
  rpsRatio: number
  cpuRatio: number | undefined
}

const ROUTES = { bearer: '/bp', dpop: '/dp' } as const
type RouteName = keyof typeof ROUTES

export async function runDpop (env: Env, options: BenchOptions, progress: (line: string) => void): Promise<DpopResult> {
  const port = await freePort()
  const file = join(tempDir(), 'bearer-proxy-dpop.json')
  const auth = { type: 'client_credentials', tokenUrl: env.tokenUrl(3600), clientId: 'bench', clientSecret: 'bench-secret' }
  writeFileSync(file, JSON.stringify({
    listen: { host: '127.0.0.1', port },
    admin: false,
    routes: {
      bearer: { prefix: ROUTES.bearer, upstream: env.upstreamUrl, auth },
      dpop: { prefix: ROUTES.dpop, upstream: env.upstreamUrl, auth: { ...auth, dpop: { alg: 'ES256' } } }
    }
  }, null, 2))
  const proxy = await spawnBearerProxy(file, port)
  const base = `http://127.0.0.1:${port}`
  try {
    for (const name of ['bearer', 'dpop'] as const) await verifyRoute(env, base, name)
    progress('dpop: verified, the upstream sees a bearer token on /bp and a DPoP token with a proof on /dp')
    const spec = (name: RouteName, durationS: number) => ({ url: `${base}${ROUTES[name]}/small`, method: 'GET' as const, headers: {}, connections: options.connections, durationS })
    const runs = { bearer: { loads: [] as LoadResult[], cpuUs: [] as number[] }, dpop: { loads: [] as LoadResult[], cpuUs: [] as number[] } }
    for (const name of ['bearer', 'dpop'] as const) await runLoad(options.loader, spec(name, options.settleS))
    for (let round = 0; round < options.rounds; round++) {
      const order: RouteName[] = round % 2 === 0 ? ['bearer', 'dpop'] : ['dpop', 'bearer']
      for (const name of order) {
        await runLoad(options.loader, spec(name, options.warmupS))
        const before = cpuMicros(proxy.pid)
        const load = await runLoad(options.loader, spec(name, options.durationS))
        const after = cpuMicros(proxy.pid)
        runs[name].loads.push(load)
        if (before !== undefined && after !== undefined && load.requests > 0) runs[name].cpuUs.push((after - before) / load.requests)
        progress(`  dpop round ${round + 1}/${options.rounds} ${name.padEnd(6)} ${Math.round(load.rps)} req/s, p99 ${load.p99} ms`)
      }
    }
    const stats = (name: RouteName): DpopRouteStats => {
      const { loads, cpuUs } = runs[name]
      return {
        rps: median(loads.map((l) => l.rps)),
        rpsRounds: loads.map((l) => Math.round(l.rps)),
        p50: median(loads.map((l) => l.p50)),
        p99: median(loads.map((l) => l.p99)),
        cpuUs: cpuUs.length === 0 ? null : median(cpuUs),
        non2xx: loads.reduce((sum, l) => sum + l.non2xx, 0),
        errors: loads.reduce((sum, l) => sum + l.errors, 0)
      }
    }
    const rpsRatio = median(runs.dpop.loads.map((l, i) => l.rps / (runs.bearer.loads[i] as LoadResult).rps))
    const cpuRatio = runs.dpop.cpuUs.length === options.rounds && runs.bearer.cpuUs.length === options.rounds
      ? median(runs.dpop.cpuUs.map((c, i) => c / (runs.bearer.cpuUs[i] as number)))
      : undefined
    return { connections: options.connections, rounds: options.rounds, durationS: options.durationS, bearer: stats('bearer'), dpop: stats('dpop'), rpsRatio, cpuRatio }
  } finally {
    await stop(proxy)
  }
}

/** GET /small through the route answers 200, and the upstream saw the scheme the route should send. */
async function verifyRoute (env: Env, base: string, name: RouteName): Promise<void> {
  const answer = await request(`${base}${ROUTES[name]}/small`)
  if (answer.status !== 200) throw new Error(`verification failed: the ${name} route answered GET /small with ${answer.status}: ${answer.body.slice(0, 300)}`)
  const { authorization, dpop } = await getJson<{ authorization: string | null, dpop: boolean }>(`${env.upstreamUrl}/_auth`)
  const scheme = authorization?.split(' ')[0]
  const expected = name === 'dpop' ? 'DPoP' : 'Bearer'
  if (scheme !== expected || dpop !== (name === 'dpop')) {
    throw new Error(`verification failed: through the ${name} route the upstream saw the ${scheme ?? '(no)'} scheme${dpop ? ' with a proof' : ''}, expected ${expected}`)
  }
}
