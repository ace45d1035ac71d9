import { parseArgs } from 'node:util'

/**
 * The command line, parsed and checked before any command's code is loaded:
 * a usage mistake, `--help` and `--version` cost no more than Node's own
 * start. Depends on node:util alone; the launcher (src/cli.ts) and both
 * command modules share it.
 */

export const USAGE = `Usage:
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

/** A usage mistake: exit code 2, with the usage text unless the message says all there is to say. */
export class UsageError extends Error {
  readonly showUsage: boolean
  constructor (message: string, options: { showUsage?: boolean } = {}) {
    super(message)
    this.name = 'UsageError'
    this.showUsage = options.showUsage ?? true
  }
}

export interface Output {
  out: (line: string) => void
  err: (line: string) => void
}

/** pino's levels, most severe first, and `silent`. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** TCP addresses typed on the command line; they win over the config file's. */
export interface AddressFlags {
  host?: string | undefined
  port?: number | undefined
  adminHost?: string | undefined
  adminPort?: number | undefined
}

export interface ServeFlags extends AddressFlags {
  level?: string | undefined
  pretty?: boolean | undefined
}

/** What the command line asks for, checked. `config` is the -c flag as typed (undefined without one). */
export type Invocation =
  | { command: 'help' }
  | { command: 'version' }
  | { command: 'serve', config: string | undefined, flags: ServeFlags }
  | { command: 'demo', flags: ServeFlags }
  | { command: 'check', config: string | undefined, json: boolean }
  | { command: 'status', config: string | undefined, json: boolean, flags: AddressFlags }
  | { command: 'token' | 'logout', config: string | undefined, route: string }
  | { command: 'login', config: string | undefined, route: string, openBrowser: boolean }

const COMMANDS = new Set<string>(['serve', 'check', 'token', 'login', 'logout', 'status', 'demo'])

/** Parses and checks the arguments; throws UsageError. */
export function parseCommandLine (argv: string[]): Invocation {
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
    throw new UsageError(argumentMistake(err as Error & { code?: string }))
  }
  const { values, positionals } = args
  if (values.help === true) return { command: 'help' }
  if (values.version === true) return { command: 'version' }
  const [command = 'serve', ...rest] = positionals
  if (!COMMANDS.has(command)) throw new UsageError(`unknown command "${command}"`)
  const port = values.port === undefined ? undefined : parsePort(values.port)
  const level = values['log-level'] === undefined ? undefined : parseLevel(values['log-level'])
  const adminFlags = {
    adminHost: values['admin-host'] === undefined ? undefined : parseHost(values['admin-host'], '--admin-host'),
    adminPort: values['admin-port'] === undefined ? undefined : parsePort(values['admin-port'], '--admin-port')
  }
  // A person at a terminal reads lines; a pipe, a file or a log collector gets JSON. Asked by the
  // server's commands alone: process.stdout, for a pipe, loads node:net.
  const pretty = (): boolean => values.json === true ? false : values.pretty ?? process.stdout.isTTY
  const config = values.config
  switch (command) {
    case 'serve':
      noExtra(rest)
      if (values.pretty === true && values.json === true) throw new UsageError('--pretty and --json exclude each other')
      return { command, config, flags: { host: values.host === undefined ? undefined : parseHost(values.host), port, ...adminFlags, level, pretty: pretty() } }
    case 'check':
      noExtra(rest)
      return { command, config, json: values.json === true }
    case 'status':
      noExtra(rest)
      return { command, config, json: values.json === true, flags: adminFlags }
    case 'token':
    case 'login':
    case 'logout': {
      const [route, ...more] = rest
      if (route === undefined) throw new UsageError(`${command} needs a ROUTE name`)
      noExtra(more)
      return command === 'login' ? { command, config, route, openBrowser: values['no-browser'] !== true } : { command, config, route }
    }
    default:
      noExtra(rest)
      return { command: 'demo', flags: { port, level, pretty: pretty() } }
  }
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

/** The message of a usage mistake as printed: with the usage after a blank line, unless it says all. */
export function usageMessage (err: UsageError): string {
  return err.showUsage ? `bearer-proxy: ${err.message}\n\n${USAGE}` : `bearer-proxy: ${err.message}`
}
