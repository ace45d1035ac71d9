import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino'

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
  return pino(options, (settings.destination ?? coalescedStdout()) as DestinationStream)
}

/** Pending lines are written at once past this many characters. */
const MAX_PENDING_CHARS = 64 * 1024

/**
 * Standard output for the JSON lines: the lines logged during one turn of the
 * event loop leave in one write at its end. A write per line cost a tenth of
 * the CPU of a small proxied request; a quiet proxy still writes each line
 * straight away, and whatever is pending is written when the process exits.
 */
function coalescedStdout (): DestinationStream & { flush: () => void } {
  const out = pino.destination({ dest: 1, sync: true })
  let pending = ''
  const flush = (): void => {
    if (pending === '') return
    const lines = pending
    pending = ''
    out.write(lines)
  }
  process.on('exit', flush)
  return {
    write (line: string): void {
      if (pending === '') setImmediate(flush)
      pending += line
      if (pending.length >= MAX_PENDING_CHARS) flush()
    },
    flush
  }
}
