import type { FastifyInstance } from 'fastify'
import { createServer } from 'node:http'
import type { Logger } from 'pino'
import { buildAdminApp } from './admin/app.js'
import { buildApp, serverSettings, type ProxyApp } from './app.js'
import type { Config } from './config/schema.js'
import { listenOn, listeningUrl } from './listener.js'
import { clientErrorHandler } from './proxy/client-errors.js'
import { Metrics } from './telemetry/metrics.js'

/** Past the grace, how long the answers of cut connections get to close (and log). */
const CUT_CLOSE_WAIT_MS = 1000

export interface RunningServer {
  /** The proxy's base URL, e.g. http://127.0.0.1:8080 */
  url: string
  /** The admin port's base URL, when it is enabled. */
  adminUrl: string | undefined
  /** The proxy's Unix socket path, when it listens on one (then `url` is http://localhost). */
  socket: string | undefined
  /** The admin's Unix socket path, when it listens on one. */
  adminSocket: string | undefined
  /** The app serving new requests now. */
  current (): ProxyApp
  /** Swaps in a new config: unchanged routes keep their tokens, in-flight requests finish on the old app. */
  reload (config: Config): Promise<void>
  /** Stops accepting, lets in-flight requests finish (up to `shutdownGrace`), then closes everything. */
  close (): Promise<void>
}

/**
 * Listens on `config.listen` with one node:http server whose requests go to
 * the current fastify app, so a reload can replace the app without dropping
 * connections; the admin port, when enabled, listens beside it.
 */
export async function startServer (config: Config, logger: Logger): Promise<RunningServer> {
  // One registry for the process: counters survive reloads. Only the admin port shows them, and it
  // cannot be turned on by a reload: without it, the Prometheus metrics are neither loaded nor kept.
  const metrics = config.admin === false ? new Metrics() : await Metrics.exported()
  let current = await buildApp(config, { logger, metrics })
  let inFlight = 0
  const busy = (): boolean => inFlight > 0
  const server = createServer(serverSettings(), (req, res) => {
    inFlight++
    res.once('close', () => { inFlight-- })
    current.app.routing(req, res)
  })
  server.on('clientError', clientErrorHandler)
  // Websocket upgrades go to the current app's server, where its WebsocketUpgrades listens for them.
  server.on('upgrade', (req, socket, head) => current.app.server.emit('upgrade', req, socket, head))
  let admin: FastifyInstance | undefined
  try {
    if (config.admin !== false) admin = await buildAdminApp(() => current, logger)
    // Both listeners open before either is announced: a busy admin port must not follow a "proxy listening" line.
    await listenOn(server, 'proxy', config.listen)
    if (admin !== undefined && config.admin !== false) {
      await listenOn(admin.server, 'admin', config.admin).catch(async (err: unknown) => {
        await new Promise((resolve) => server.close(resolve))
        throw err
      })
    }
  } catch (err) {
    await Promise.all([admin?.close(), current.close()])
    throw err
  }
  const url = listeningUrl(server)
  const adminUrl = admin === undefined ? undefined : listeningUrl(admin.server)
  const socket = config.listen.path
  const adminSocket = config.admin === false ? undefined : config.admin.path
  logger.info({ event: 'listening', listener: 'proxy', url, ...(socket === undefined ? {} : { socket }) }, 'proxy listening')
  if (adminUrl !== undefined) logger.info({ event: 'listening', listener: 'admin', url: adminUrl, ...(adminSocket === undefined ? {} : { socket: adminSocket }) }, 'admin listening')
  logRoutes(logger, current.config, url)

  /** Apps a reload replaced that still finish their requests in flight. */
  const retiring = new Set<ProxyApp>()
  /** Websocket sessions of apps a reload replaced, which outlive those apps until the shutdown. */
  const sessions = new Set<ProxyApp['upgrades']>()

  async function swap (next: Config): Promise<void> {
    if (JSON.stringify(next.listen) !== JSON.stringify(config.listen) || JSON.stringify(next.admin) !== JSON.stringify(config.admin)) {
      logger.warn({ event: 'reload_partial' }, 'listen and admin addresses change only on restart')
    }
    const old = current
    current = await buildApp(next, { logger, metrics, previous: old })
    logger.info({ event: 'reloaded', ...diffRoutes(old, current) }, 'config reloaded')
    logRoutes(logger, current.config, url)
    // Websocket sessions of the old app live on; the shutdown closes them with the current ones.
    sessions.add(old.upgrades)
    for (const upgrades of sessions) if (upgrades !== old.upgrades && upgrades.open === 0) sessions.delete(upgrades)
    // The old app finishes what it has in flight, then closes what the new one did not keep.
    retiring.add(old)
    old.handOver(current).finally(() => retiring.delete(old))
      .catch((err: unknown) => logger.warn({ event: 'retire_failed', reason: (err as Error).message }, 'closing the previous config failed'))
  }
  let reloading: Promise<void> = Promise.resolve()

  return {
    url,
    adminUrl,
    socket,
    adminSocket,
    current: () => current,
    reload (next) {
      // One reload at a time, each from the app actually current when it runs: two overlapping
      // reloads could otherwise both retire the same app and close a broker still in use.
      const run = reloading.then(() => swap(next))
      reloading = run.catch(() => {})
      return run
    },
    async close () {
      const closed = new Promise((resolve) => server.close(resolve))
      server.closeIdleConnections()
      // No renewal starts during the grace: requests in flight keep the tokens they have.
      for (const app of [current, ...retiring]) app.retire()
      // Websocket sessions never finish by themselves: they are asked to close now (1001). The
      // server waits for their connections too, which closeAllConnections does not reach.
      const upgrades = [current.upgrades, ...sessions]
      const openSessions = (): number => upgrades.reduce((n, u) => n + u.open, 0)
      for (const u of upgrades) u.close(false)
      const deadline = Date.now() + current.config.shutdownGrace
      // inFlight drops as responses close, in callbacks this loop waits for.
      while ((busy() || openSessions() > 0) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        server.closeIdleConnections()
      }
      const force = busy() || openSessions() > 0
      if (force) {
        logger.warn({ event: 'shutdown_forced', inFlight, websockets: openSessions() }, 'grace period over; closing open connections')
        // Told before their connections go, so the requests still in flight (on this app, or on one a
        // reload retired) are logged as cut by the shutdown, not blamed on their client or upstream.
        current.cutInFlight()
        for (const old of retiring) old.cutInFlight()
      }
      for (const u of upgrades) u.close(force)
      server.closeAllConnections()
      await closed
      // The cut answers close a turn of the event loop later (their sockets' handles close
      // first), and their requests are logged then: waited for, so an exit right after this
      // close loses no line.
      const cutDeadline = Date.now() + CUT_CLOSE_WAIT_MS
      while (busy() && Date.now() < cutDeadline) await new Promise((resolve) => setTimeout(resolve, 10))
      await Promise.all([current.close({ force }), admin?.close()])
    }
  }
}

/** SIGTERM / SIGINT: stop accepting, let in-flight requests finish, then exit 0. */
export function closeOnSignals (server: Pick<RunningServer, 'close'>, logger: Logger, exit: (code: number) => void = process.exit): void {
  let closing = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) return
    closing = true
    logger.info({ event: 'shutdown', signal }, 'shutting down')
    server.close().then(() => exit(0), (err: unknown) => {
      logger.error({ event: 'shutdown_failed', reason: (err as Error).message }, 'shutdown failed')
      exit(1)
    })
  }
  process.once('SIGTERM', onSignal)
  process.once('SIGINT', onSignal)
}

function logRoutes (logger: Logger, config: Config, url: string): void {
  for (const route of config.routes) {
    logger.info({ event: 'route', route: route.name, local: localUrl(url, route.prefix), upstream: route.upstream, auth: route.auth.type }, 'route ready')
  }
}

export function localUrl (base: string, prefix: string): string {
  return `${base}${prefix === '/' ? '' : prefix}/`
}

function diffRoutes (old: ProxyApp, next: ProxyApp): { added: string[], removed: string[], changed: string[], kept: string[] } {
  const before = new Map(old.config.routes.map((r) => [r.name, JSON.stringify(r)]))
  const after = new Map(next.config.routes.map((r) => [r.name, JSON.stringify(r)]))
  return {
    added: [...after.keys()].filter((n) => !before.has(n)),
    removed: [...before.keys()].filter((n) => !after.has(n)),
    changed: [...after.keys()].filter((n) => before.has(n) && before.get(n) !== after.get(n)),
    kept: [...after.keys()].filter((n) => old.brokers.get(n) !== undefined && old.brokers.get(n) === next.brokers.get(n))
  }
}
