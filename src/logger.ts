import { pino, type Logger, type LoggerOptions } from 'pino'

/**
 * A fixed list, compiled once at start-up: never built from user input.
 * Nothing logs these on purpose; redaction is the backstop.
 */
export const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-proxy-key"]', 'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]', 'headers.authorization', 'headers.cookie', 'headers["x-proxy-key"]',
  'token', 'accessToken', 'refreshToken', 'access_token', 'refresh_token', 'clientSecret', 'client_secret', 'password', 'secret'
]

export interface LoggerSettings {
  level?: string
  pretty?: boolean
  /** Where lines go; tests pass a sink. Default: stdout. */
  destination?: NodeJS.WritableStream
}

export function createLogger (settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid }
  }
  if (settings.pretty === true) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } })
  }
  return settings.destination === undefined ? pino(options) : pino(options, settings.destination as never)
}
