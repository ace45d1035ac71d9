import type { FastifyInstance } from 'fastify'
import type { Metrics } from '../telemetry/metrics.js'
import type { RouteCredential } from '../auth/credential.js'
import type { RouteConfig } from '../config/schema.js'
import { Forwarding } from './forward.js'
import type { RouteTransport } from './transport.js'
import { websocketHandler, type WebsocketUpgrades } from './websocket.js'

export interface RouteParts {
  route: RouteConfig
  credential: RouteCredential
  transport: RouteTransport
  metrics: Metrics
  upgrades: WebsocketUpgrades
}

const HTTP_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']

/**
 * One config route: `prefix` → `upstream`. Plain requests go to its
 * forwarding (proxy/forward.ts), websocket upgrades to its websocket handler
 * (proxy/websocket.ts); both pass the same hooks (guards) first.
 */
export function registerRoute (app: FastifyInstance, { route, credential, transport, metrics, upgrades }: RouteParts): void {
  const localPrefix = route.prefix === '/' ? '' : route.prefix
  const urls = [localPrefix === '' ? '/' : localPrefix, `${localPrefix}/*`]
  const config = { bearerRoute: { name: route.name, prefix: route.prefix } }
  const plain = new Forwarding({ route, credential, dispatcher: transport.dispatcher, metrics }).handle
  // A GET naming websocket without asking to upgrade its connection is a plain request.
  const upgrade = websocketHandler({ route, credential, tls: transport.tls, metrics, upgrades }, plain)

  app.register(async (scope) => {
    for (const url of urls) scope.route({ url, method: HTTP_METHODS, config, handler: plain })
    for (const url of urls) scope.route({ url, method: 'GET', constraints: { upgrade: 'websocket' }, config, handler: upgrade })
  })
}
