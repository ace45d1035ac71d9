import { Readable, Transform, type TransformCallback } from 'node:stream'
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
 * the whole body before forwarding. The copy goes into one buffer of the
 * announced length rather than keeping the socket's chunks alive, which costs
 * the garbage collector far less under concurrent uploads.
 */
export class ReplayableBody extends Transform {
  readonly #slab: Buffer | undefined
  readonly #copy: Buffer
  #size = 0

  constructor (length: number) {
    super()
    this.#slab = length > SMALL_BODY_BYTES ? slabs.pop() ?? Buffer.allocUnsafeSlow(MAX_REPLAY_BODY_BYTES) : undefined
    this.#copy = this.#slab === undefined ? Buffer.allocUnsafe(length) : this.#slab.subarray(0, length)
  }

  /** Once the answer is sent: the copy's memory goes back to the pool for the next upload. */
  release (): void {
    if (this.#slab !== undefined && slabs.length < MAX_POOLED_SLABS && !slabs.includes(this.#slab)) slabs.push(this.#slab)
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    // More than announced cannot happen (Node's parser enforces Content-Length); guard anyway.
    if (this.#size + chunk.length <= this.#copy.length) chunk.copy(this.#copy, this.#size)
    this.#size += chunk.length
    callback(null, chunk)
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
 * Content parser for every type: a body with a known length up to the limit
 * streams through a ReplayableBody; anything larger, or chunked, streams
 * through untouched and cannot be replayed.
 */
export function keepSmallBodies (request: FastifyRequest, payload: NodeJS.ReadableStream & Readable, done: (err: Error | null, body?: unknown) => void): void {
  const length = Number(request.headers['content-length'])
  if (request.headers['transfer-encoding'] !== undefined || !Number.isInteger(length) || length > MAX_REPLAY_BODY_BYTES) {
    done(null, payload)
    return
  }
  // A client that aborts mid-body errors the stream the upstream request reads, which ends that
  // request. Not pipeline(): when undici drops the body (the upstream answered early), the client's
  // own request must stay open for the answer.
  const body = new ReplayableBody(length)
  payload.once('error', (err) => body.destroy(err))
  done(null, payload.pipe(body))
}
