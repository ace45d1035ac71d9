import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/** How often every exchange in progress is checked. */
const CHECK_EVERY_MS = 250

interface Exchange {
  request: IncomingMessage
  response: ServerResponse
  /** Held from the start: Node detaches it from the request and response once they are done. */
  socket: Socket
  seen: number
  idleForMs: number
  idleMs: number
  onStall: () => void
}

const exchanges = new Set<Exchange>()
let timer: NodeJS.Timeout | undefined

/**
 * The client is the one holding things up: its body has stopped arriving
 * while the proxy wants more (the request is not paused by the proxy's own
 * backpressure), or it has stopped reading an answer the proxy is waiting to
 * write. Waiting for the upstream is the route timeout's business.
 */
function clientHolds ({ request, response }: Exchange): boolean {
  const uploading = !request.complete && !request.isPaused()
  const notReading = response.headersSent && response.writableNeedDrain
  return uploading || notReading
}

function stall (exchange: Exchange): void {
  try {
    exchange.onStall()
  } catch {
    exchange.socket.destroy()
  }
}

function check (): void {
  for (const exchange of exchanges) {
    const { response, socket } = exchange
    if (response.writableFinished || socket.destroyed) {
      exchanges.delete(exchange)
      // Gone unfinished. Node never closes an answer still queued behind an earlier one on a
      // pipelined connection, so nothing else would end its exchange.
      if (!response.writableFinished) stall(exchange)
      continue
    }
    const moved = socket.bytesRead + socket.bytesWritten
    if (moved !== exchange.seen || !clientHolds(exchange)) {
      exchange.seen = moved
      exchange.idleForMs = 0
      continue
    }
    exchange.idleForMs += CHECK_EVERY_MS
    if (exchange.idleForMs >= exchange.idleMs) {
      exchanges.delete(exchange)
      stall(exchange)
    }
  }
  if (exchanges.size === 0) {
    clearInterval(timer)
    timer = undefined
  }
}

/**
 * Calls `onStall` once when a client stops sending its body, or stops reading
 * its answer, for `idleMs` (within a quarter second), with nothing moving on
 * its connection either way, or when its connection is gone before the
 * answer finished. One timer checks every exchange in progress by
 * its socket's byte counts: no listener and no timer refresh per chunk, which
 * is what a socket idle timeout costs.
 */
export function watchExchange (request: IncomingMessage, response: ServerResponse, idleMs: number, onStall: () => void): void {
  const socket = request.socket
  exchanges.add({ request, response, socket, seen: socket.bytesRead + socket.bytesWritten, idleForMs: 0, idleMs, onStall })
  timer ??= setInterval(check, CHECK_EVERY_MS).unref()
}
