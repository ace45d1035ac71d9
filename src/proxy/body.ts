import { Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'

/** Bodies up to this size are kept so a request can be replayed once after a `retryOn` answer. */
export const MAX_REPLAY_BODY_BYTES = 1024 * 1024

/**
 * Content parser for every type: a body with a known length up to the limit is
 * read into a Buffer (kept for a replay); anything else streams through
 * untouched and cannot be replayed.
 */
export function keepSmallBodies (request: FastifyRequest, payload: NodeJS.ReadableStream & Readable, done: (err: Error | null, body?: unknown) => void): void {
  const length = Number(request.headers['content-length'])
  if (request.headers['transfer-encoding'] !== undefined || !Number.isInteger(length) || length > MAX_REPLAY_BODY_BYTES) {
    done(null, payload)
    return
  }
  const chunks: Buffer[] = []
  payload.on('data', (chunk: Buffer) => chunks.push(chunk))
  payload.once('error', (err) => done(err))
  payload.once('end', () => done(null, Buffer.concat(chunks)))
}

/** The body to forward: a fresh stream over a kept Buffer, or the live request stream. */
export function forwardBody (body: unknown): unknown {
  return Buffer.isBuffer(body) ? Readable.from([body], { objectMode: false }) : body
}
