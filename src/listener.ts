import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { addressText, type ListenAddress } from './config/schema.js'

export type ListenerName = 'proxy' | 'admin'

/**
 * A listener could not open. The message names the listener and its address
 * (`admin port 127.0.0.1:9901 is in use (EADDRINUSE)`); `code` is the
 * system's, so callers can still tell a busy port.
 */
export class ListenError extends Error {
  readonly code: string | undefined
  constructor (message: string, code: string | undefined, options?: { cause: unknown }) {
    super(message, options)
    this.name = 'ListenError'
    this.code = code
  }
}

/** `proxy port 127.0.0.1:8080`. */
export function listenerText (name: ListenerName, address: ListenAddress): string {
  return `${name} port ${addressText(address)}`
}

/** Opens `server` on its address; every failure is a ListenError naming the listener. */
export async function listenOn (server: Server, name: ListenerName, address: ListenAddress): Promise<void> {
  const what = listenerText(name, address)
  try {
    server.listen(address.port, address.host)
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => { throw err })])
  } catch (err) {
    throw new ListenError(failureText(what, err as NodeJS.ErrnoException), (err as NodeJS.ErrnoException).code, { cause: err })
  }
}

/** Where clients reach a listening server: `http://127.0.0.1:8080`. */
export function listeningUrl (server: Server): string {
  const address = server.address()
  if (address === null || typeof address === 'string') return 'http://localhost'
  const { address: ip, family, port }: AddressInfo = address
  return `http://${family === 'IPv6' ? `[${ip}]` : ip}:${port}`
}

function failureText (what: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EADDRINUSE': return `${what} is in use (EADDRINUSE)`
    case 'EACCES': return `${what}: permission denied (EACCES)`
    case 'EADDRNOTAVAIL': return `${what}: no such address on this machine (EADDRNOTAVAIL)`
    case 'ENOTFOUND': case 'EAI_AGAIN': return `${what}: the host name does not resolve (${err.code})`
    default: return `${what}: cannot listen (${err.code ?? err.message})`
  }
}
