import type { Invocation, Output, ServeFlags } from '../cli-args.js'
import { configPath, loadConfigFile } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { ConfigError } from '../config-error.js'
import { createLogger } from '../logger.js'
import { closeOnSignals, localUrl, startServer, type RunningServer } from '../server.js'
import { version } from '../version.js'
import { withFlags } from './address-flags.js'
import { exitCodeOf } from './failure.js'

/**
 * The commands that run the HTTP server, `serve` and `demo`: the process
 * that loads these never loads the short-lived tools of ./tools.ts, and the
 * other way round.
 */
export async function run (invocation: Extract<Invocation, { command: 'serve' | 'demo' }>, io: Output): Promise<number> {
  try {
    return invocation.command === 'serve'
      ? await serve(configPath(invocation.config), invocation.flags, io)
      : await demo(invocation.flags, io)
  } catch (err) {
    return exitCodeOf(err, io)
  }
}

async function serve (file: string, flags: ServeFlags, io: Output): Promise<number> {
  const config = withFlags(loadConfigFile(file), flags)
  const logger = createLogger({ level: flags.level, pretty: flags.pretty })
  const server = await startServer(config, logger)
  if (process.stderr.isTTY) io.err(banner(server, config))
  // SIGHUP reloads the file; a config that does not validate is refused and the running one kept.
  process.on('SIGHUP', () => {
    let next: Config
    try {
      next = withFlags(loadConfigFile(file), flags)
    } catch (err) {
      const issues = err instanceof ConfigError ? err.issues : [(err as Error).message]
      logger.error({ event: 'reload_refused', issues }, 'new config refused; the running one is kept')
      return
    }
    server.reload(next).catch((err: unknown) => {
      logger.error({ event: 'reload_refused', issues: [(err as Error).message] }, 'new config refused; the running one is kept')
    })
  })
  closeOnSignals(server, logger)
  return new Promise<number>(() => {}) // runs until a signal ends the process
}

/** The start-up summary for a person at a terminal (logs stay JSON on stdout). */
function banner (server: RunningServer, config: Config): string {
  const { url, adminUrl, socket, adminSocket } = server
  const width = Math.max(...config.routes.map((r) => localUrl(url, r.prefix).length))
  const admin = adminUrl === undefined ? '' : ` (admin ${adminSocket === undefined ? adminUrl : `unix socket ${adminSocket}`})`
  return [
    `bearer-proxy ${version()} listening on ${socket === undefined ? url : `unix socket ${socket}`}${admin}`,
    ...config.routes.map((r) => `  ${localUrl(url, r.prefix).padEnd(width)}  ->  ${r.upstream}  [${r.auth.type}]`),
    ...(socket === undefined ? [] : [`  e.g. curl --unix-socket ${socket} ${localUrl(url, config.routes[0]?.prefix ?? '/')}`]),
    ''
  ].join('\n')
}

async function demo (flags: ServeFlags, io: Output): Promise<number> {
  const { demoInstructions, startDemoServers } = await import('../demo.js')
  const servers = await startDemoServers({ host: '127.0.0.1', port: flags.port ?? 8080 })
  const logger = createLogger({ level: flags.level, pretty: flags.pretty })
  let server
  try {
    server = await startServer(servers.config, logger)
  } catch (err) {
    await servers.close()
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new Error(`port ${servers.config.listen.port} is in use; try: bearer-proxy demo --port 8081`)
    throw err
  }
  io.err(demoInstructions(server.url, server.adminUrl))
  closeOnSignals({ close: async () => { await server.close(); await servers.close() } }, logger)
  return new Promise<number>(() => {})
}
