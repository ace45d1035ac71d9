import type { IncomingMessage } from 'node:http'

/** How often every upload in progress is checked for progress. */
const CHECK_EVERY_MS = 250

interface Upload {
  request: IncomingMessage
  seen: number
  idleForMs: number
  idleMs: number
  onStall: () => void
}

const uploads = new Set<Upload>()
let timer: NodeJS.Timeout | undefined

function check (): void {
  for (const upload of uploads) {
    const { request } = upload
    if (request.complete || request.socket.destroyed) {
      uploads.delete(upload)
      continue
    }
    const read = request.socket.bytesRead
    if (read !== upload.seen) {
      upload.seen = read
      upload.idleForMs = 0
      continue
    }
    upload.idleForMs += CHECK_EVERY_MS
    if (upload.idleForMs >= upload.idleMs) {
      uploads.delete(upload)
      upload.onStall()
    }
  }
  if (uploads.size === 0) {
    clearInterval(timer)
    timer = undefined
  }
}

/**
 * Calls `onStall` once when a request body stops arriving for `idleMs`
 * (within a quarter second). One timer checks every upload in progress by
 * its socket's byte count: no listener and no timer refresh per chunk, which
 * is what a socket idle timeout costs.
 */
export function watchUpload (request: IncomingMessage, idleMs: number, onStall: () => void): void {
  if (request.complete) return
  uploads.add({ request, seen: request.socket.bytesRead, idleForMs: 0, idleMs, onStall })
  timer ??= setInterval(check, CHECK_EVERY_MS).unref()
}
