#!/usr/bin/env node
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { secondsLeft, type TokenBroker } from './auth/broker.js'
import { LoginRequired } from './auth/token-error.js'
import { configPath, loadConfigFile } from './config/load.js'
import { DEFAULT_ADMIN, isSocketAddress, type Config } from './config/schema.js'
import { ConfigError } from './config-error.js'
import { createBrokers } from './brokers.js'
import { isUserLogin } from './schemes/registry.js'
import { silentLogger } from './silent-logger.js'
import type { RunningServer } from './server.js'

const USAGE = `Usage:
  bearer-proxy [serve] [-c FILE] [--host H] [--port N] [--admin-host H] [--admin-port N]
                     [--log-level L] [--pretty | --json]
  bearer-proxy check [-c FILE] [--json]   obtain a token for every route; exit 1 if any fails
  bearer-proxy token ROUTE [-c FILE]      print one valid access token for ROUTE
  bearer-proxy login ROUTE [-c FILE] [--no-browser]
                                          log a person in for an authorization_code or
                                          device_code route; the tokens go to its store
  bearer-proxy logout ROUTE [-c FILE]     forget the route's stored tokens (and revoke the
                                          refresh token where the server offers RFC 7009)
  bearer-proxy status [-c FILE] [--json]  the running proxy's routes, read from its admin port;
                                          exit 1 if a route is failing or the port does not answer
  bearer-proxy demo [--port N]            demo token server + API + proxy, all on loopback

Config: -c FILE, else $BEARER_PROXY_CONFIG, else ./config/bearer-proxy.yaml
Logs: readable lines on a terminal (--pretty), JSON lines otherwise (--json)
Exit codes: 0 ok, 1 runtime failure, 2 usage or config error`

const COMMANDS = new Set(['serve', 'check', 'token', 'login', 'logout', 'status', 'demo'])

/** A usage mistake: exit code 2, with the usage text unless the message says all there is to say. */
class UsageError extends Error {
  readonly showUsage: boolean
  constructor (message: string, options: { showUsage?: boolean } = {}) {
    super(message)
    this.showUsage = options.showUsage ?? true
  }
}

/** pino's levels, most severe first, and `silent`. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

interface Output {
  out: (line: string) => void
  err: (line: string) => void
}

export async function main (argv: string[], io: Output = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) }): Promise<number> {
  let args
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        host: { type: 'string' },
        port: { type: 'string' },
        'admin-host': { type: 'string' },
        'admin-port': { type: 'string' },
        'log-level': { type: 'string' },
        pretty: { type: 'boolean' },
        json: { type: 'boolean' },
        'no-browser': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' }
      }
    })
  } catch (err) {
    io.err(`bearer-proxy: ${argumentMistake(err as Error & { code?: string })}\n\n${USAGE}`)
    return 2
  }
  const { values, positionals } = args
  if (values.help === true) {
    io.out(USAGE)
    return 0
  }
  if (values.version === true) {
    io.out(version())
    return 0
  }
  const [command = 'serve', ...rest] = positionals
  try {
    if (!COMMANDS.has(command)) throw new UsageError(`unknown command "${command}"`)
    const port = values.port === undefined ? undefined : parsePort(values.port)
    const level = values['log-level'] === undefined ? undefined : parseLevel(values['log-level'])
    const adminFlags = {
      adminHost: values['admin-host'] === undefined ? undefined : parseHost(values['admin-host'], '--admin-host'),
      adminPort: values['admin-port'] === undefined ? undefined : parsePort(values['admin-port'], '--admin-port')
    }
    switch (command) {
      case 'serve': {
        noExtra(rest)
        if (values.pretty === true && values.json === true) throw new UsageError('--pretty and --json exclude each other')
        const flags: ServeFlags = {
          host: values.host === undefined ? undefined : parseHost(values.host),
          port,
          ...adminFlags,
          level,
          // A person at a terminal reads lines; a pipe, a file or a log collector gets JSON.
          pretty: values.json === true ? false : values.pretty ?? process.stdout.isTTY
        }
        return await serve(configPath(values.config), flags, io)
      }
      case 'check':
        noExtra(rest)
        return await check(loadConfigFile(configPath(values.config)), io, values.json === true)
      case 'status':
        noExtra(rest)
        return await status(withFlags(loadConfigFile(configPath(values.config)), adminFlags), io, values.json === true)
      case 'token': {
        const [route, ...more] = rest
        if (route === undefined) throw new UsageError('token needs a ROUTE name')
        noExtra(more)
        return await printToken(loadConfigFile(configPath(values.config)), route, io)
      }
      case 'login':
      case 'logout': {
        const [route, ...more] = rest
        if (route === undefined) throw new UsageError(`${command} needs a ROUTE name`)
        noExtra(more)
        const config = loadConfigFile(configPath(values.config))
        return command === 'login' ? await login(config, route, io, values['no-browser'] !== true) : await logout(config, route, io)
      }
      default:
        noExtra(rest)
        return await demo({ port, level, pretty: values.json === true ? false : values.pretty ?? process.stdout.isTTY }, io)
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(err.showUsage ? `bearer-proxy: ${err.message}\n\n${USAGE}` : `bearer-proxy: ${err.message}`)
      return 2
    }
    if (err instanceof ConfigError) {
      for (const issue of err.issues) io.err(issue)
      return 2
    }
    io.err(`bearer-proxy: ${(err as Error).message}`)
    return 1
  }
}

interface ServeFlags {
  host?: string | undefined
  port?: number | undefined
  adminHost?: string | undefined
  adminPort?: number | undefined
  level?: string | undefined
  pretty?: boolean | undefined
}

/**
 * The HTTP server, the demo, the status client and the pretty logger are
 * loaded only by the commands that use them: `token` and `check`, which
 * scripts call in loops, start without fastify, undici's proxy path,
 * prom-client or pino-pretty.
 */
async function serverModules (): Promise<[typeof import('./logger.js'), typeof import('./server.js')]> {
  return Promise.all([import('./logger.js'), import('./server.js')])
}

async function serve (file: string, flags: ServeFlags, io: Output): Promise<number> {
  const config = withFlags(loadConfigFile(file), flags)
  const [{ createLogger }, { closeOnSignals, localUrl, startServer }] = await serverModules()
  const logger = createLogger({ level: flags.level, pretty: flags.pretty })
  const server = await startServer(config, logger)
  if (process.stderr.isTTY) io.err(banner(server, config, localUrl))
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

/** Flags win over the file; they set TCP addresses, so they cannot apply to a socket listener. */
function withFlags (config: Config, flags: Pick<ServeFlags, 'host' | 'port' | 'adminHost' | 'adminPort'>): Config {
  if (flags.host !== undefined || flags.port !== undefined) {
    if (isSocketAddress(config.listen)) throw new UsageError('--host and --port set a TCP address, but the config listens on a Unix socket (listen.path)')
    config.listen = { host: flags.host ?? config.listen.host, port: flags.port ?? config.listen.port }
  }
  if (flags.adminHost !== undefined || flags.adminPort !== undefined) {
    if (config.admin !== false && isSocketAddress(config.admin)) throw new UsageError('--admin-host and --admin-port set a TCP address, but the config puts the admin on a Unix socket (admin.path)')
    // A flag typed on the command line turns on an admin the file has off (`admin: false`).
    const base = config.admin === false ? DEFAULT_ADMIN : config.admin
    config.admin = { host: flags.adminHost ?? base.host, port: flags.adminPort ?? base.port }
  }
  return config
}

/** The start-up summary for a person at a terminal (logs stay JSON on stdout). */
function banner (server: RunningServer, config: Config, localUrl: (base: string, prefix: string) => string): string {
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

async function check (config: Config, io: Output, json: boolean): Promise<number> {
  const { brokers, redis } = await createBrokers(config, { logger: silentLogger })
  try {
    return await checkRoutes(config, brokers, io, json)
  } finally {
    for (const broker of brokers.values()) broker.close()
    await redis?.release()
  }
}

async function checkRoutes (config: Config, brokers: Map<string, TokenBroker>, io: Output, json: boolean): Promise<number> {
  // With a store, start from the stored tokens, and renew only under the store's lock: a running
  // proxy sharing the store never finds its refresh token spent behind its back.
  await Promise.all([...brokers.values()].map((b) => b.init()))
  const loginRequired = new Set<string>()
  const results = await Promise.all(config.routes.map(async (route) => {
    const result = { name: route.name, prefix: route.prefix, type: route.auth.type, ok: false, expiresIn: null as number | null, error: null as string | null }
    try {
      const token = await brokers.get(route.name)?.tokenOnce()
      result.ok = true
      result.expiresIn = token === undefined ? null : secondsLeft(token, Date.now())
    } catch (err) {
      result.error = (err as Error).message
      if (err instanceof LoginRequired) loginRequired.add(route.name)
    }
    return result
  }))
  if (json) {
    io.out(JSON.stringify(results, null, 2))
  } else {
    for (const r of results) {
      const detail = r.ok ? (r.expiresIn === null ? 'never expires' : `expires in ${r.expiresIn}s`) : r.error
      io.out(`${r.name}\t${r.prefix}\t${r.type}\t${r.ok ? 'ok' : loginRequired.has(r.name) ? 'login required' : 'error'}\t${detail}`)
    }
  }
  return results.every((r) => r.ok) ? 0 : 1
}

/** The running proxy's route table, from its admin port (as the config names it); no token is ever asked for. */
async function status (config: Config, io: Output, json: boolean): Promise<number> {
  if (config.admin === false) throw new UsageError('status reads the running proxy\'s admin port, but the config turns it off (admin: false)', { showUsage: false })
  const { AdminUnreachableError, anyFailing, fetchRoutes, statusTable } = await import('./status.js')
  let routes
  try {
    routes = await fetchRoutes(config.admin)
  } catch (err) {
    if (!(err instanceof AdminUnreachableError)) throw err
    io.err(`bearer-proxy: ${err.message}`)
    return 1
  }
  io.out(json ? JSON.stringify({ routes }, null, 2) : statusTable(routes))
  return anyFailing(routes) ? 1 : 0
}

function routeNamed (config: Config, name: string): Config['routes'][number] {
  const route = config.routes.find((r) => r.name === name)
  if (route === undefined) throw new UsageError(`no route "${name}"; routes: ${config.routes.map((r) => r.name).join(', ')}`, { showUsage: false })
  return route
}

/**
 * The one interactive step of a user-login route: the person logs in (in a
 * browser, or on another device with a code), and the tokens go to the
 * route's store under its lock, where a running `serve` sharing the store
 * finds them. Prints what the person needs and progress, on stderr; never a
 * token, code or verifier.
 */
async function login (config: Config, name: string, io: Output, openBrowser: boolean): Promise<number> {
  const route = routeNamed(config, name)
  if (!isUserLogin(route.auth)) {
    throw new UsageError(`route "${name}" is ${route.auth.type}: only authorization_code and device_code routes have a person log in`, { showUsage: false })
  }
  if (config.store === undefined) {
    throw new UsageError('login keeps the tokens in the route\'s store, but the config has none that outlives this command: set stateDir, or store: { type: file } or { type: redis }', { showUsage: false })
  }
  const { brokers, redis } = await createBrokers({ ...config, routes: [route] }, { logger: silentLogger })
  const broker = brokers.get(name) as TokenBroker
  const cancel = new AbortController()
  const onSignal = (): void => { cancel.abort() }
  process.once('SIGINT', onSignal)
  try {
    const run = broker.source.login
    if (run === undefined) throw new UsageError(`route "${name}" has no login`, { showUsage: false })
    const tokens = await run({
      openUrl: (url) => {
        io.err(`To log in route "${name}", open this URL in a browser:\n\n  ${url}\n`)
        if (openBrowser) openInBrowser(url)
        io.err('Waiting for the login to complete in the browser...')
      },
      showCode: (prompt) => {
        io.err(`To log in route "${name}", open ${prompt.verificationUri} and enter the code:\n\n  ${prompt.userCode}\n`)
        if (prompt.verificationUriComplete !== undefined) io.err(`(or open ${prompt.verificationUriComplete})`)
        io.err(`Waiting for the login to be approved (the code expires in ${Math.round(prompt.expiresIn / 60)} min)...`)
      }
    }, cancel.signal)
    const token = await broker.storeLogin(tokens)
    const expires = secondsLeft(token, Date.now())
    io.err(`Logged in: route "${name}" has tokens${expires === null ? '' : ` (access token expires in ${expires}s${token.refreshToken === undefined ? ', no refresh token: log in again then' : ', renewed with its refresh token'})`}.`)
    return 0
  } finally {
    process.off('SIGINT', onSignal)
    broker.close()
    await redis?.release()
  }
}

/**
 * Forgets the route's tokens in its store, then revokes the refresh token
 * (RFC 7009) where an endpoint is known; a failed revocation is a warning:
 * the tokens are forgotten either way.
 */
async function logout (config: Config, name: string, io: Output): Promise<number> {
  const route = routeNamed(config, name)
  if (config.store === undefined) {
    throw new UsageError('logout forgets the tokens in the route\'s store, but the config has none (stateDir, or store: file or redis): nothing outlives a process', { showUsage: false })
  }
  const { brokers, redis } = await createBrokers({ ...config, routes: [route] }, { logger: silentLogger })
  const broker = brokers.get(name) as TokenBroker
  try {
    await broker.init()
    const refreshToken = broker.status().token?.refreshToken
    await broker.forget()
    io.err(`Logged out: route "${name}"'s stored tokens are forgotten.`)
    if (refreshToken === undefined || broker.source.revoke === undefined) return 0
    const result = await broker.source.revoke(refreshToken, AbortSignal.timeout(60_000))
    if (result === undefined) io.err('No revocation endpoint is known (revocationUrl, or the issuer\'s metadata): the refresh token was not revoked at the server.')
    else if (result.revoked) io.err('The refresh token is revoked at the server.')
    else io.err(`bearer-proxy: warning: the refresh token could not be revoked: ${result.reason}`)
    return 0
  } finally {
    broker.close()
    await redis?.release()
  }
}

/**
 * Opens the person's browser, detached, errors ignored: the URL is printed
 * anyway. Not on a Linux without a display (a server over SSH), where a
 * text browser would take the terminal. The URL is one argument, never
 * given to a shell.
 */
function openInBrowser (url: string): void {
  let command: string
  let args: string[]
  if (process.platform === 'darwin') {
    command = 'open'
    args = [url]
  } else if (process.platform === 'win32') {
    // Not `cmd /c start`: cmd would read the URL's `&` as a command separator.
    command = 'rundll32'
    args = ['url.dll,FileProtocolHandler', url]
  } else {
    if (process.env.DISPLAY === undefined && process.env.WAYLAND_DISPLAY === undefined) return
    command = 'xdg-open'
    args = [url]
  }
  try {
    const child = spawn(command, args, { detached: true, stdio: 'ignore' })
    child.on('error', () => {})
    child.unref()
  } catch {
    // No opener: the person has the URL printed above.
  }
}

async function printToken (config: Config, name: string, io: Output): Promise<number> {
  const route = routeNamed(config, name)
  const { brokers, redis } = await createBrokers({ ...config, routes: [route] }, { logger: silentLogger })
  const broker = brokers.get(name)
  try {
    // A stored token still usable is printed as is; otherwise one renewal, awaited to its end, so
    // exiting never abandons a refresh whose rotated refresh token would then be lost.
    await broker?.init()
    const token = await broker?.tokenOnce()
    io.out(token?.accessToken ?? '')
    return 0
  } finally {
    broker?.close()
    // The Redis connection would keep the process alive.
    await redis?.release()
  }
}

async function demo (flags: ServeFlags, io: Output): Promise<number> {
  const [[{ createLogger }, { closeOnSignals, startServer }], { demoInstructions, startDemoServers }] = await Promise.all([serverModules(), import('./demo.js')])
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

function parsePort (text: string, flag = '--port'): number {
  const port = Number(text)
  if (!/^\d+$/.test(text) || port > 65535) throw new UsageError(`${flag} must be a number from 0 to 65535, not "${text}"`)
  return port
}

function parseLevel (text: string): string {
  if (!(LOG_LEVELS as readonly string[]).includes(text)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}; not "${text}"`)
  return text
}

/**
 * parseArgs' own words, except for an unknown option: its advice on "--"
 * suits no command here and ends on an unbalanced quote.
 */
function argumentMistake (err: Error & { code?: string }): string {
  if (err.code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return err.message
  const option = /^Unknown option '(.*?)'\./.exec(err.message)?.[1]
  return option === undefined ? (err.message.split('. ')[0] ?? err.message) : `unknown option "${option}"`
}

/** A host name or an IP address (IPv6 with or without brackets), nothing that could not be one. */
function parseHost (text: string, flag = '--host'): string {
  if (!/^(\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z.:_-]+)$/.test(text)) throw new UsageError(`${flag} must be a host name or an IP address, not "${text}"`)
  return text.startsWith('[') ? text.slice(1, -1) : text
}

function noExtra (rest: string[]): void {
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`)
}

function version (): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

main(process.argv.slice(2)).then((code) => {
  if (code !== 0) process.exitCode = code
}, (err: unknown) => {
  process.stderr.write(`bearer-proxy: ${(err as Error).message}\n`)
  process.exitCode = 1
})
