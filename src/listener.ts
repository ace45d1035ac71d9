import { once } from 'node:events'
import { lstat, stat, unlink } from 'node:fs/promises'
import type { Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { dirname } from 'node:path'
import { addressText, isSocketAddress, type ListenAddress, type SocketAddress } from './config/schema.js'

/** A stale socket is one that refuses connections; a live listener answers at once, so this is generous. */
const PROBE_TIMEOUT_MS = 1000

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

/** `proxy port 127.0.0.1:8080` or `admin socket /run/…/admin.sock`. */
export function listenerText (name: ListenerName, address: ListenAddress): string {
  return `${name} ${isSocketAddress(address) ? 'socket' : 'port'} ${addressText(address)}`
}

/**
 * Opens `server` on a TCP address or a Unix socket. A socket path is checked
 * first (see prepareSocketPath) and the socket is created with `mode` and no
 * wider, ever. Every failure is a ListenError naming the listener.
 */
export async function listenOn (server: Server, name: ListenerName, address: ListenAddress): Promise<void> {
  const what = listenerText(name, address)
  if (isSocketAddress(address)) await prepareSocketPath(what, name === 'proxy' ? 'listen.path' : 'admin.path', address.path)
  try {
    if (isSocketAddress(address)) {
      listenOnSocket(server, address)
    } else {
      server.listen(address.port, address.host)
    }
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => { throw err })])
  } catch (err) {
    throw new ListenError(failureText(what, err as NodeJS.ErrnoException), (err as NodeJS.ErrnoException).code, { cause: err })
  }
}

/** Where clients reach a listening server: `http://127.0.0.1:8080`, or `http://localhost` over a socket (curl --unix-socket PATH http://localhost/...). */
export function listeningUrl (server: Server): string {
  const address = server.address()
  if (address === null || typeof address === 'string') return 'http://localhost'
  const { address: ip, family, port }: AddressInfo = address
  return `http://${family === 'IPv6' ? `[${ip}]` : ip}:${port}`
}

/**
 * The socket file takes its permissions from the umask when bind() creates
 * it, so the umask is narrowed to give exactly `mode` for that one call. A
 * chmod afterwards would leave a window in which the socket is open to
 * everyone, and chmod follows a symlink swapped in meanwhile. Node binds
 * synchronously inside listen() (outside cluster workers), so the process-wide
 * umask is changed for no other JavaScript; files created meanwhile by other
 * threads set their own modes (token files are 0600).
 */
function listenOnSocket (server: Server, address: SocketAddress): void {
  const previous = process.umask(0o777 & ~address.mode)
  try {
    server.listen(address.path)
  } finally {
    process.umask(previous)
  }
}

/**
 * Before binding a socket path: its folder must exist; nothing may be there
 * but a stale socket of ours from a crashed run, which is removed. Never
 * follows a symlink (lstat; unlink removes a link, not its target), never
 * replaces a regular file, and refuses a socket someone answers on. Should
 * anything appear at the path after this check, bind() fails on it rather
 * than replacing it.
 */
async function prepareSocketPath (what: string, key: string, path: string): Promise<void> {
  const refuse = (reason: string, code?: string): ListenError => new ListenError(`${what} (${key}): ${reason}`, code)
  const dir = dirname(path)
  const folder = await stat(dir).catch((err: NodeJS.ErrnoException) => { throw refuse(`its folder ${dir} cannot be used (${err.code ?? err.message})`, err.code) })
  if (!folder.isDirectory()) throw refuse(`${dir} is not a folder`, 'ENOTDIR')

  let existing
  try {
    existing = await lstat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw refuse(`cannot inspect the path (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, (err as NodeJS.ErrnoException).code)
  }
  if (existing.isSymbolicLink()) throw refuse('a symbolic link is there; it is neither followed nor replaced: remove it or choose another path', 'EEXIST')
  if (!existing.isSocket()) throw refuse(`a ${existing.isDirectory() ? 'folder' : existing.isFile() ? 'regular file' : 'file that is not a socket'} is there; it is not replaced: remove it or choose another path`, 'EEXIST')
  if (process.getuid !== undefined && existing.uid !== process.getuid()) throw refuse('a socket of another user is there; it is not replaced', 'EEXIST')
  const probe = await probeSocket(path)
  if (probe === 'live') throw refuse('another process is listening on it (EADDRINUSE)', 'EADDRINUSE')
  if (probe !== 'stale') throw refuse(`a socket is there whose state cannot be told (${probe}); it is not replaced`, 'EADDRINUSE')
  // Nobody answers: left behind by a run that crashed.
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw refuse(`cannot remove the stale socket (${err.code ?? err.message})`, err.code)
  })
}

/** 'live' when something accepts a connection, 'stale' when the socket refuses (or vanished), else the reason. */
async function probeSocket (path: string): Promise<string> {
  return await new Promise((resolve) => {
    const socket = connect({ path })
    const done = (result: string): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(result)
    }
    const timer = setTimeout(() => done('no answer'), PROBE_TIMEOUT_MS)
    socket.once('connect', () => done('live'))
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? 'stale' : (err.code ?? err.message)))
  })
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
