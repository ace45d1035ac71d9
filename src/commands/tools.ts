import { createRequire } from 'node:module'
import { UsageError, type Invocation, type Output } from '../cli-args.js'
import { secondsLeft, type TokenBroker } from '../auth/broker.js'
import { LoginRequired } from '../auth/token-error.js'
import { createBrokers } from '../brokers.js'
import { configPath, loadConfigFile } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { isUserLogin } from '../schemes/registry.js'
import { silentLogger } from '../silent-logger.js'
import { withFlags } from './address-flags.js'
import { exitCodeOf } from './failure.js'

/**
 * The short-lived commands scripts call, often in loops (`token`, `check`),
 * and the interactive `login` and `logout`. The process that runs them never
 * loads the HTTP server, fastify, prom-client or pino; undici is loaded on
 * the first token request (src/auth/undici.ts), the status client only by
 * `status`.
 */
export async function run (invocation: Exclude<Invocation, { command: 'help' | 'version' | 'serve' | 'demo' }>, io: Output): Promise<number> {
  try {
    const config = loadConfigFile(configPath(invocation.config))
    switch (invocation.command) {
      case 'check': return await check(config, io, invocation.json)
      case 'status': return await status(withFlags(config, invocation.flags), io, invocation.json)
      case 'token': return await printToken(config, invocation.route, io)
      case 'login': return await login(config, invocation.route, io, invocation.openBrowser)
      case 'logout': return await logout(config, invocation.route, io)
    }
  } catch (err) {
    return exitCodeOf(err, io)
  }
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
  const { AdminUnreachableError, anyFailing, fetchRoutes, statusTable } = await import('../status.js')
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
    // node:child_process is loaded only here: `token` in a shell loop never needs it.
    const { spawn } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process')
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
