import { randomBytes, randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { jwtVerify, SignJWT } from 'jose'
import type { Config } from './config/schema.js'
import { parseConfig } from './config/load.js'

/** Demo tokens live this long, so renewal shows in the logs within a minute. */
export const DEMO_TOKEN_TTL = 30

export interface DemoServers {
  tokenUrl: string
  apiUrl: string
  config: Config
  close (): Promise<void>
}

/**
 * The embedded default: a client-credentials token server and an API that
 * accepts only its tokens, both on loopback, and the proxy config in front.
 */
export async function startDemoServers (listen: { host: string, port: number }): Promise<DemoServers> {
  const clientId = 'demo-client'
  const clientSecret = randomBytes(24).toString('base64url')
  const signingKey = randomBytes(32)
  let issued = 0

  const tokenServer = await listenOnLoopback(async (req, res) => {
    if (req.method !== 'POST' || req.url !== '/oauth/token') return json(res, 404, { error: 'not_found' })
    const form = new URLSearchParams(await readBody(req))
    const basic = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString()
    if (form.get('grant_type') !== 'client_credentials') return json(res, 400, { error: 'unsupported_grant_type' })
    if (basic !== `${clientId}:${clientSecret}`) return json(res, 401, { error: 'invalid_client', error_description: 'unknown client or wrong secret' })
    issued++
    const accessToken = await new SignJWT({ scope: 'demo', n: issued })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(clientId).setIssuedAt().setJti(randomUUID()).setExpirationTime(`${DEMO_TOKEN_TTL}s`)
      .sign(signingKey)
    json(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: DEMO_TOKEN_TTL })
  })

  const api = await listenOnLoopback(async (req, res) => {
    const match = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')
    let claims
    try {
      if (match === null) throw new Error('no token')
      claims = (await jwtVerify(match[1] as string, signingKey)).payload
    } catch {
      return json(res, 401, { error: { code: 'UNAUTHENTICATED', message: 'a valid bearer token is required' } })
    }
    const body = await readBody(req)
    const url = new URL(req.url ?? '/', 'http://demo')
    json(res, 200, {
      message: 'Hello from the demo API: this request carried a token the proxy obtained for you.',
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      token: { number: claims.n, subject: claims.sub, expiresIn: (claims.exp as number) - Math.floor(Date.now() / 1000) },
      ...(body === '' ? {} : { body })
    })
  })

  const tokenUrl = `${origin(tokenServer)}/oauth/token`
  const apiUrl = origin(api)
  const config = parseConfig({
    listen,
    // Any free port: the demo must start even where a real proxy already holds 9901.
    admin: { host: '127.0.0.1', port: 0 },
    tokens: { minValidity: 5 },
    routes: {
      demo: { upstream: apiUrl, auth: { type: 'client_credentials', tokenUrl, clientId, clientSecret } }
    }
  })
  return {
    tokenUrl,
    apiUrl,
    config,
    close: async () => {
      await Promise.all([tokenServer, api].map((s) => new Promise((resolve) => s.close(resolve))))
    }
  }
}

export function demoInstructions (proxyUrl: string, adminUrl: string | undefined): string {
  return [
    '',
    'bearer-proxy demo: a token server, an API that needs its tokens, and the proxy in front, all on loopback.',
    'No auth on the client side; try:',
    '',
    `  curl ${proxyUrl}/demo/hello`,
    `  curl -X POST ${proxyUrl}/demo/echo -H 'content-type: application/json' -d '{"hello":"world"}'`,
    `  curl ${proxyUrl}/nowhere          # an error of the proxy's own, as JSON`,
    ...(adminUrl === undefined ? [] : [`  curl ${adminUrl}/routes           # token state per route (never the token)`, `  curl ${adminUrl}/metrics`]),
    '',
    `Tokens live ${DEMO_TOKEN_TTL} s; watch the log renew them in the background. Ctrl-C stops.`,
    ''
  ].join('\n')
}

async function listenOnLoopback (handler: (req: IncomingMessage, res: ServerResponse) => Promise<void> | void): Promise<Server> {
  const server = createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch(() => json(res, 500, { error: 'server_error' }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}

function origin (server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function readBody (req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

function json (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}
