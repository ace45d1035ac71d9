import { Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'

/** Bodies up to this size are kept so a request can be replayed once after a `retryOn` answer. */
export const MAX_REPLAY_BODY_BYTES = 1024 * 1024

/**
 * A request body on its way to the upstream that also keeps it, so the
 * request can be sent again. It streams from the first byte: nothing waits for
 * the whole body before forwarding. The client's chunks are read straight off
 * its request (no pipe, no transform: per chunk, that plumbing cost more than
 * keeping them) and kept as they came: Node's HTTP parser hands every piece of
 * a body over in a buffer of its own, of its exact size, so keeping it holds
 * no more memory than a copy would, and costs no copy (1 MiB per 1 MiB
 * upload) and no pool of copies staying resident. They are dropped once the
 * answer shows no replay is wanted. The upstream reads this stream, never the
 * client's request: when undici drops the body (the upstream answered early)
 * it destroys this stream, and the client's request stays open for the answer.
 */
export class ReplayableBody extends Readable {
  readonly #payload: Readable
  readonly #length: number
  #kept: Buffer[] | undefined = []
  #size = 0

  constructor (payload: Readable, length: number) {
    super()
    this.#payload = payload
    this.#length = length
    payload.on('data', this.#onData)
    payload.once('end', this.#onEnd)
    // A client that aborts mid-body errors this stream, which ends the upstream request.
    payload.once('error', this.#onError)
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#size += chunk.length
    // More than announced cannot happen (Node's parser enforces Content-Length); guard anyway.
    if (this.#size <= this.#length) this.#kept?.push(chunk)
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

  /** No replay will be wanted (the answer is going to the client): the kept chunks are let go. */
  release (): void {
    this.#kept = undefined
  }

  /** Whether every announced byte has passed, and is still kept. */
  get complete (): boolean {
    return this.#size === this.#length && this.#kept !== undefined
  }

  /** A fresh stream over the kept body, for the replay; whole once `complete`. */
  replay (): Readable {
    return Readable.from(this.#kept ?? [], { objectMode: false })
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
