import { UsageError, usageMessage, type Output } from '../cli-args.js'
import { ConfigError } from '../config-error.js'

/** How a command's failure is told: a usage mistake or a config error exits 2, anything else 1. */
export function exitCodeOf (err: unknown, io: Output): number {
  if (err instanceof UsageError) {
    io.err(usageMessage(err))
    return 2
  }
  if (err instanceof ConfigError) {
    for (const issue of err.issues) io.err(issue)
    return 2
  }
  io.err(`bearer-proxy: ${(err as Error).message}`)
  return 1
}
