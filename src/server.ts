import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import { buildApp, type ProxyApp } from './app.js'
import type { Config } from './config/schema.js'

export interface RunningServer extends ProxyApp {
  /** The proxy's base URL, e.g. http://127.0.0.1:8080 */
  url: string
}

/** Builds the proxy and listens on `config.listen`. */
export async function startServer (config: Config, logger: Logger): Promise<RunningServer> {
  const proxy = await buildApp(config, { logger })
  try {
    await proxy.app.listen({ host: config.listen.host, port: config.listen.port })
  } catch (err) {
    await proxy.close()
    throw err
  }
  const address = proxy.app.server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const url = `http://${host}:${address.port}`
  for (const route of config.routes) {
    logger.info({ event: 'route', route: route.name, local: `${url}${route.prefix === '/' ? '' : route.prefix}/`, upstream: route.upstream, auth: route.auth.type }, 'route ready')
  }
  return { ...proxy, url }
}

/** SIGTERM / SIGINT: stop accepting, let in-flight requests finish, then exit 0. */
export function closeOnSignals (server: ProxyApp, logger: Logger, exit: (code: number) => void = process.exit): void {
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
