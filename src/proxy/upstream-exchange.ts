import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import { errors } from '../auth/undici-parts.js'
import { UpstreamUnavailableError } from '../errors.js'
import { upstreamFailure } from './error-reply.js'
import { cutByShutdown } from './request-state.js'

/** Answers up to this size (by Content-Length) are read whole and sent with their headers in one write. */
const SMALL_ANSWER_BYTES = 64 * 1024
/** A dropped answer's body is read (so its connection can be reused) up to this size, then its request is aborted. */
const DRAIN_LIMIT_BYTES = 128 * 1024

/** The client's end of an exchange: what the answer is written to. */
export interface ClientSide {
  readonly request: FastifyRequest
  readonly reply: FastifyReply
  /** The client's connection, held: Node detaches it from the request once the body is read. */
  readonly socket: Socket
}

/** The route's decisions on an upstream answer, given the client's side `C`; the exchange only moves the bytes. */
export interface ExchangeRoute<C extends ClientSide> {
  /** Upstream requests and answers that take longer fail with this timeout. */
  readonly timeoutMs: number
  /** The answer's status and headers are in: the headers the client gets, or undefined when this answer is dropped (it is being replayed). */
  head: (client: C, statusCode: number, headers: IncomingHttpHeaders) => OutgoingHttpHeaders | undefined
  /** The answer streams: the client has to keep reading it. */
  streaming: (client: C) => void
  /** The exchange failed before any answer reached the client. */
  failed: (client: C, failure: FastifyError) => void
}

// What the exchange does with the answer's body.
const AWAITING_HEAD = 0
const BUFFERING = 1
const STREAMING = 2
const DROPPING = 3
const DONE = 4

/**
 * One request to the upstream, as an undici dispatch handler that writes the
 * answer straight to the client's response: a small answer (by Content-Length)
 * is collected and sent with its headers in one write; a bigger or unsized one
 * streams, pausing the upstream while the client's socket is full. The
 * route calls `abandon()` when the client goes away. This saves undici's body stream,
 * fastify's stream plumbing and the pipe between them on every answer.
 */
export class UpstreamExchange<C extends ClientSide> implements Dispatcher.DispatchHandler {
  private readonly client: C
  private readonly route: ExchangeRoute<C>
  private readonly res: ServerResponse
  private controller: Dispatcher.DispatchController | undefined
  private mode = AWAITING_HEAD
  private statusCode = 0
  private headers: OutgoingHttpHeaders = {}
  private chunks: Buffer[] = []
  private dropped = 0

  constructor (route: ExchangeRoute<C>, client: C) {
    this.route = route
    this.client = client
    this.res = client.reply.raw
  }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.controller = controller
    // Abandoned while it waited for a connection.
    if (this.mode === DONE) this.finish(controller)
  }

  /** The client is gone: whatever the upstream request has reached, it is ended. */
  abandon (): void {
    if (this.mode !== DONE) this.finish(this.controller)
  }

  onResponseStart (controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // Informational answers: Node has answered the client's 100-continue itself.
    if (statusCode >= 100 && statusCode < 200) return
    const res = this.res
    // The client is gone, or was answered already (a stalled upload): the upstream's answer is dropped.
    if (res.destroyed || res.headersSent || this.client.socket.destroyed) {
      this.finish(controller)
      return
    }
    if (!(statusCode >= 100 && statusCode <= 599)) {
      this.finish(controller)
      this.route.failed(this.client, new UpstreamUnavailableError(`invalid status code ${statusCode}`))
      return
    }
    const sent = this.route.head(this.client, statusCode, headers)
    if (sent === undefined) {
      // Read to its end when that is cheap, so its connection can carry the replay.
      if (Number(headers['content-length']) > DRAIN_LIMIT_BYTES) this.finish(controller)
      else this.mode = DROPPING
      return
    }
    this.statusCode = statusCode
    this.headers = sent
    // No body follows, whatever Content-Length says (a 304 may carry the representation's): headers only.
    if (this.client.request.method === 'HEAD' || statusCode === 204 || statusCode === 304) {
      this.mode = DONE
      if (this.writeHead()) res.end()
      return
    }
    const length = Number(sent['content-length'])
    if (length >= 0 && length <= SMALL_ANSWER_BYTES) {
      this.mode = BUFFERING
      return
    }
    if (!this.writeHead()) return
    this.mode = STREAMING
    this.route.streaming(this.client)
    res.on('drain', () => controller.resume())
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    switch (this.mode) {
      case BUFFERING:
        this.chunks.push(chunk)
        return
      case STREAMING:
        if (!this.res.write(chunk)) controller.pause()
        return
      case DROPPING:
        this.dropped += chunk.length
        if (this.dropped > DRAIN_LIMIT_BYTES) this.finish(controller)
    }
  }

  onResponseEnd (): void {
    const mode = this.mode
    this.mode = DONE
    if (mode === STREAMING) {
      this.res.end()
    } else if (mode === BUFFERING && !this.res.headersSent && !this.res.destroyed && this.writeHead()) {
      const chunks = this.chunks
      this.res.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
    }
  }

  onResponseError (_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    const mode = this.mode
    this.mode = DONE
    if (mode === DROPPING || mode === DONE) return
    // The upstream broke off mid-answer: the client's answer is broken off too, never passed on
    // truncated. Past the shutdown grace the proxy cut the upstream request itself: the client's
    // connection is cut too (and the request logged as cut), not answered as an upstream failure.
    if (mode !== AWAITING_HEAD || cutByShutdown(this.client.request)) this.res.destroy()
    else if (!this.res.headersSent) this.route.failed(this.client, upstreamFailure(err, this.route.timeoutMs))
  }

  /**
   * Sends the status and headers. undici's parser already refuses the header bytes Node would
   * refuse to write; should one still get through, the exchange fails rather than the process.
   */
  private writeHead (): boolean {
    try {
      this.res.writeHead(this.statusCode, this.headers)
      return true
    } catch {
      this.finish(this.controller)
      if (!this.res.headersSent) this.route.failed(this.client, new UpstreamUnavailableError('invalid response header'))
      return false
    }
  }

  /** Nothing more of this answer is wanted: its upstream request is aborted. */
  private finish (controller: Dispatcher.DispatchController | undefined): void {
    this.mode = DONE
    controller?.abort(new errors.RequestAbortedError('answer not wanted'))
  }
}
