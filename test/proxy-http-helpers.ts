import { request, type IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

export interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  body: Buffer
}

export interface RawRequestOptions {
  method?: string
  /** Sent byte for byte as the request target (no URL parsing or re-encoding). */
  path: string
  /** An array value sends the header once per element. */
  headers?: Record<string, string | string[] | number>
  body?: Buffer | string | Readable
}

/**
 * One request over node:http, so the path and headers go out exactly as given
 * (fetch would normalise the query and refuse hop-by-hop headers).
 */
export async function rawRequest (baseUrl: string, options: RawRequestOptions): Promise<RawResponse> {
  const base = new URL(baseUrl)
  return await new Promise<RawResponse>((resolve, reject) => {
    const req = request({
      host: base.hostname,
      port: base.port,
      method: options.method ?? 'GET',
      path: options.path,
      // A fresh connection per request: nothing lingers after the test.
      agent: false
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.once('error', reject)
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }))
    })
    req.once('error', reject)
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      req.setHeader(name, value)
    }
    const body = options.body
    if (body === undefined) {
      req.end()
    } else if (typeof body === 'string' || Buffer.isBuffer(body)) {
      // node:http sends neither length nor chunking for DELETE/OPTIONS bodies on its own.
      if (!req.hasHeader('content-length') && !req.hasHeader('transfer-encoding')) req.setHeader('content-length', Buffer.byteLength(body))
      req.end(body)
    } else {
      pipeline(body, req).catch(reject)
    }
  })
}

/** The JSON error body the proxy answers with. */
export function errorBody (res: RawResponse): { code: string, message: string, route?: string } {
  return (JSON.parse(res.body.toString('utf8')) as { error: { code: string, message: string, route?: string } }).error
}

/** Header names of a rawHeaders array, lower-cased, in order. */
export function headerNames (rawHeaders: string[]): string[] {
  return rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
}
