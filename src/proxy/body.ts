import { Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'

/** Bodies up to this size are kept so a request can be replayed once after a `retryOn` answer. */
export const MAX_REPLAY_BODY_BYTES = 1024 * 1024
/** Copies of bodies above this size live in pooled 1 MiB slabs: allocating a fresh megabyte per upload makes the GC the bottleneck. */
const SMALL_BODY_BYTES = 64 * 1024
const MAX_POOLED_SLABS = 64
const slabs: Buffer[] = []

/**
 * A request body on its way to the upstream that also keeps a copy, so the
 * request can be sent again. It streams from the first byte: nothing waits for
 * the whole body before forwarding. The client's chunks are read straight off
 * its request (no pipe, no transform: per chunk, that plumbing cost more than
 * the copy) into one buffer of the announced length rather than keeping the
 * socket's chunks alive, which costs the garbage collector far less under
 * concurrent uploads. The upstream reads this stream, never the client's
 * request: when undici drops the body (the upstream answered early) it
 * destroys this stream, and the client's request stays open for the answer.
 */
export class ReplayableBody extends Readable {
  readonly #payload: Readable
  readonly #slab: Buffer | undefined
  readonly #copy: Buffer
  #size = 0

  constructor (payload: Readable, length: number) {
    super()
    this.#payload = payload
    this.#slab = length > SMALL_BODY_BYTES ? slabs.pop() ?? Buffer.allocUnsafeSlow(MAX_REPLAY_BODY_BYTES) : undefined
    this.#copy = this.#slab === undefined ? Buffer.allocUnsafe(length) : this.#slab.subarray(0, length)
    payload.on('data', this.#onData)
    payload.once('end', this.#onEnd)
    // A client that aborts mid-body errors this stream, which ends the upstream request.
    payload.once('error', this.#onError)
  }

  readonly #onData = (chunk: Buffer): void => {
    // More than announced cannot happen (Node's parser enforces Content-Length); guard anyway.
    if (this.#size + chunk.length <= this.#copy.length) chunk.copy(this.#copy, this.#size)
    this.#size += chunk.length
    if (!this.push(chunk)) this.#payload.pause()
  }

  readonly #onEnd = (): void => { this.push(null) }
  readonly #onError = (err: Error): void => { this.destroy(err) }

  override _read (): void {
    this.#payload.resume()
  }

  override _destroy (err: Error | null, callback: (err?: Error | null) => void): void {
    this.#payload.off('data', this.#onData).off('end', this.#onEnd).off('error', this.#onError)
    // Whatever the upstream did not read is read and dropped, so the client's connection can carry its answer.
    this.#payload.resume()
    callback(err)
  }

  /** Once the answer is sent: the copy's memory goes back to the pool for the next upload. */
  release (): void {
    if (this.#slab !== undefined && slabs.length < MAX_POOLED_SLABS && !slabs.includes(this.#slab)) slabs.push(this.#slab)
  }

  /** Whether every announced byte has passed (and been copied). */
  get complete (): boolean {
    return this.#size === this.#copy.length
  }

  /** The copy of the body; whole once `complete`. */
  kept (): Buffer {
    return this.#copy.subarray(0, Math.min(this.#size, this.#copy.length))
  }

  /** A fresh stream over the kept body, for the replay. */
  static replay (body: Buffer): Readable {
    return Readable.from([body], { objectMode: false })
  }
}

/**
 * The body of a request as its upstream gets it. The proxy reads bodies
 * itself, in the route's handler: fastify parses none (see app.ts), so a body
 * goes on whatever the method, GET and HEAD included, and nothing is read
 * before a route matched. A body with a known length up to the limit streams
 * through a ReplayableBody; anything larger, or chunked, streams through
 * untouched and cannot be replayed; a request that announces no body (no
 * Content-Length, or 0, and no Transfer-Encoding) has none.
 */
export function requestBody (request: FastifyRequest): Readable | undefined {
  const raw = request.raw
  if (raw.headers['transfer-encoding'] !== undefined) return raw
  const length = Number(raw.headers['content-length'])
  if (!(length > 0)) return undefined
  return length > MAX_REPLAY_BODY_BYTES ? raw : new ReplayableBody(raw, length)
}
