import { createRequire } from 'node:module'
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino'
import type PinoPretty from 'pino-pretty'

/** pino-pretty is loaded only for readable lines: a sidecar logging JSON starts without it. */
const loadPretty = (): typeof PinoPretty => createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty

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
  /** Colour in pretty lines. Default: only when stdout is a terminal and NO_COLOR is not set. */
  colour?: boolean
}

/**
 * Colour only for a person at a terminal: never into a pipe or a file, and
 * never when NO_COLOR is set to anything but "" (https://no-color.org).
 */
export function colourWanted (stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && (env.NO_COLOR ?? '') === '' && env.TERM !== 'dumb'
}

export function createLogger (settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid }
  }
  if (settings.pretty === true) {
    // Formatted in this thread, after redaction: a transport's worker never sees a terminal, so could not tell.
    const prettify = loadPretty().prettyFactory({
      colorize: settings.colour ?? colourWanted(process.stdout),
      // One line per event, as in JSON: fields inline, and `err` as JSON too rather than an indented stack.
      singleLine: true,
      errorLikeObjectKeys: [],
      messageFormat: oneLineMessage,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname'
    })
    const out = settings.destination ?? pino.destination({ dest: 1, sync: true })
    return pino(options, { write: (line: string) => { out.write(prettify(line)) } })
  }
  return pino(options, (settings.destination ?? coalescedStdout()) as DestinationStream)
}

/** A message on one line, without control characters (a terminal would act on escape sequences). */
function oneLineMessage (log: Record<string, unknown>, messageKey: string): string {
  const message = log[messageKey]
  return typeof message === 'string' ? message.replace(/\s*\p{Cc}+\s*/gu, ' ').trim() : ''
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
