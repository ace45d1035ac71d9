import { UsageError, type AddressFlags } from '../cli-args.js'
import { DEFAULT_ADMIN, isSocketAddress, type Config } from '../config/schema.js'

/** Flags win over the file; they set TCP addresses, so they cannot apply to a socket listener. */
export function withFlags (config: Config, flags: AddressFlags): Config {
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
