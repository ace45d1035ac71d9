import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'

const REASONS: Record<string, [number, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'HEADERS_TOO_LARGE', 'Request headers are too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'REQUEST_TIMEOUT', 'The request did not arrive in time']
}

/**
 * Requests Node's parser refuses before fastify sees them (oversized headers,
 * conflicting Content-Length / Transfer-Encoding, slow headers) get the same
 * JSON error shape, and the connection is closed.
 */
export function clientErrorHandler (err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  const [status, code, message] = REASONS[err.code ?? ''] ?? [400, 'BAD_REQUEST', 'Malformed HTTP request']
  const body = JSON.stringify({ error: { code, message } })
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
}
