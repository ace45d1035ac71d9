import { request } from 'node:http'
import type { RouteView } from './admin/app.js'
import { addressText, isSocketAddress, type ListenAddress } from './config/schema.js'

/** The admin port answers at once when it is up; a silent one is not waited on longer. */
const STATUS_TIMEOUT_MS = 5000
/** States `status` exits 1 for: a route that cannot serve a token. */
const FAILING_STATES = new Set(['failing', 'login_required'])

/** The admin port did not answer, or not as one does. */
export class AdminUnreachableError extends Error {}

/**
 * GET /routes from the running proxy's admin listener, as its config names it
 * (a wildcard host is reached on the loopback of the same family).
 */
export function fetchRoutes (admin: ListenAddress, timeoutMs = STATUS_TIMEOUT_MS): Promise<RouteView[]> {
  const where = isSocketAddress(admin) ? `admin socket ${admin.path}` : `admin port ${addressText(admin)}`
  const target = isSocketAddress(admin) ? { socketPath: admin.path, host: 'localhost' } : { host: reachableHost(admin.host), port: admin.port }
  return new Promise((resolve, reject) => {
    const fail = (reason: string): void => reject(new AdminUnreachableError(`the ${where} does not answer (${reason}); is \`bearer-proxy serve\` running with this config?`))
    const req = request({ ...target, path: '/routes', headers: { accept: 'application/json' }, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.once('error', (err) => fail(err.message))
      res.once('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let body: { routes?: unknown, error?: { code?: string, message?: string } }
        try {
          body = JSON.parse(text) as typeof body
        } catch {
          return reject(new AdminUnreachableError(`the ${where} answered ${res.statusCode ?? '?'} with no route status: is it bearer-proxy's admin port?`))
        }
        if (res.statusCode !== 200 || !Array.isArray(body.routes)) {
          return reject(new AdminUnreachableError(`the ${where} answered ${res.statusCode ?? '?'}: ${oneLine(body.error?.code ?? '')} ${oneLine(body.error?.message ?? '')}`.trimEnd()))
        }
        resolve(body.routes as RouteView[])
      })
    })
    req.once('timeout', () => { req.destroy(); fail(`no answer within ${timeoutMs / 1000} s`) })
    req.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message))
    req.end()
  })
}

/** 0.0.0.0 and :: are where a server listens, not an address to connect to. */
function reachableHost (host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1'
  if (host === '::' || host === '[::]') return '::1'
  return host.startsWith('[') ? host.slice(1, -1) : host
}

export function anyFailing (routes: RouteView[]): boolean {
  return routes.some((r) => FAILING_STATES.has(r.state))
}

/**
 * The route table for a terminal. Every cell is made one line without
 * control characters: an error message comes from a token endpoint, and a
 * terminal would act on the escape sequences it might carry.
 */
export function statusTable (routes: RouteView[], now: Date = new Date()): string {
  const header = ['ROUTE', 'PREFIX', 'UPSTREAM', 'AUTH', 'STATE', 'EXPIRES IN', 'LAST REFRESH', 'TOKEN REQUESTS', 'REQUESTS (5 MIN)', 'LAST ERROR']
  const rows = routes.map((r) => [
    r.name,
    r.prefix,
    r.upstream,
    r.auth,
    r.state.replace('_', ' '),
    r.expiresIn === null ? (r.state === 'valid' ? 'never' : '-') : duration(r.expiresIn),
    r.lastRefresh === null ? '-' : clock(new Date(r.lastRefresh), now),
    `${r.tokenRequests.total}${r.tokenRequests.failed > 0 ? ` (${r.tokenRequests.failed} failed)` : ''}`,
    `${r.requests.recent.total}${r.requests.recent.errors === 0 ? '' : r.requests.recent.errors === 1 ? ' (1 error)' : ` (${r.requests.recent.errors} errors)`}`,
    r.lastError === null ? '-' : `${r.lastErrorAt === null ? '' : `${clock(new Date(r.lastErrorAt), now)} `}${r.lastError}`
  ].map(oneLine))
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)))
  return [header, ...rows].map((cells) => cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i] as number)).join('  ').trimEnd()).join('\n')
}

function oneLine (text: string): string {
  return text.replace(/\s*\p{Cc}+\s*/gu, ' ').trim()
}

function pad (n: number): string {
  return String(n).padStart(2, '0')
}

/** Local time to the second; with the date when it is not today. */
function clock (date: Date, now: Date): string {
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  if (date.toDateString() === now.toDateString()) return time
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}`
}

function duration (seconds: number): string {
  if (seconds <= 0) return 'expired'
  const d = Math.floor(seconds / 86400)
  const h = Math.floor(seconds % 86400 / 3600)
  const m = Math.floor(seconds % 3600 / 60)
  if (d > 0) return `${d}d ${h}h`
  if (h > 0) return `${h}h ${pad(m)}m ${pad(seconds % 60)}s`
  if (m > 0) return `${m}m ${pad(seconds % 60)}s`
  return `${seconds}s`
}
