import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import { buildAdminApp } from './admin/app.js'
import { buildApp, type ProxyApp } from './app.js'
import type { Config } from './config/schema.js'

export interface RunningServer extends ProxyApp {
  /** The proxy's base URL, e.g. http://127.0.0.1:8080 */
  url: string
  /** The admin port's base URL, when it is enabled. */
  adminUrl: string | undefined
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
  const url = baseUrl(proxy.app.server.address() as AddressInfo)
  let adminUrl: string | undefined
  let close = proxy.close
  if (config.admin !== false) {
    const admin = await buildAdminApp(proxy, logger)
    try {
      await admin.listen({ host: config.admin.host, port: config.admin.port })
    } catch (err) {
      await Promise.all([admin.close(), proxy.close()])
      throw err
    }
    adminUrl = baseUrl(admin.server.address() as AddressInfo)
    logger.info({ event: 'admin', url: adminUrl }, 'admin port ready')
    close = async () => { await Promise.all([proxy.close(), admin.close()]) }
  }
  for (const route of config.routes) {
    logger.info({ event: 'route', route: route.name, local: `${url}${route.prefix === '/' ? '' : route.prefix}/`, upstream: route.upstream, auth: route.auth.type }, 'route ready')
  }
  return { ...proxy, url, adminUrl, close }
}

function baseUrl (address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return `http://${host}:${address.port}`
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
