import type { Logger } from 'pino'

const drop = (): void => {}

/**
 * A logger that drops every line, for the commands that print their own
 * output (`token`, `check`): a silent pino costs a scripted `token` more
 * start-up time and memory than the rest of its work. It has pino's level
 * methods and `child`, all the token machinery calls.
 */
export const silentLogger: Logger = (() => {
  const logger = {
    level: 'silent',
    fatal: drop,
    error: drop,
    warn: drop,
    info: drop,
    debug: drop,
    trace: drop,
    silent: drop,
    child: () => logger,
    bindings: () => ({}),
    isLevelEnabled: () => false
  }
  // pino's Logger type carries its whole API; nothing beyond the members above is ever called here.
  return logger as unknown as Logger
})()
