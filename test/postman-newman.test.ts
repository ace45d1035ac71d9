import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import newman, { type NewmanRunOptions, type NewmanRunSummary } from 'newman'
import { parse as parseYaml } from 'yaml'
import type { Emulator } from './fixtures/emulator.js'
import { startNetApi } from './fixtures/net-api.js'
import { startNetFoundry } from './fixtures/netfoundry.js'
import { startNetography } from './fixtures/netography.js'
import { startVivacity } from './fixtures/vivacity.js'
import { startSeedProxy } from './seed-helpers.js'

const COLLECTION_FILE = new URL('../config/postman/bearer-proxy.postman_collection.json', import.meta.url)
const ENVIRONMENT_FILE = new URL('../config/postman/bearer-proxy.postman_environment.json', import.meta.url)
/** The config the README says to start the collection with. */
const POSTMAN_CONFIG = new URL('../config/examples/postman.yaml', import.meta.url)
/** The per-API example files whose routes it combines, one per folder of the collection. */
const EXAMPLES = ['netography-api-key.yaml', 'net-api-oauth.yaml', 'netfoundry.yaml', 'vivacity.yaml']

interface PostmanItem {
  name: string
  item?: PostmanItem[]
  auth?: { type: string }
  event?: Array<{ listen: string, script: { exec: string[] } }>
  request?: { method: string, auth?: { type: string }, header?: Array<{ key: string }>, body?: { raw?: string }, url: { raw: string } }
}

interface PostmanCollection extends PostmanItem {
  info: { schema: string }
  item: PostmanItem[]
}

const readJson = (file: URL): unknown => JSON.parse(readFileSync(file, 'utf8'))

function requests (items: PostmanItem[]): PostmanItem[] {
  return items.flatMap((i) => i.item === undefined ? [i] : requests(i.item))
}

function runNewman (options: NewmanRunOptions): Promise<NewmanRunSummary> {
  return new Promise((resolve, reject) => {
    newman.run(options, (err, summary) => err === null ? resolve(summary) : reject(err))
  })
}

const yamlRoutes = (file: URL): Record<string, { prefix?: string }> =>
  (parseYaml(readFileSync(file, 'utf8')) as { routes: Record<string, { prefix?: string }> }).routes

/** Routes of each per-API example file, merged into one config, as a user would combine them. */
function exampleRoutes (): Record<string, unknown> {
  const routes: Record<string, unknown> = {}
  for (const file of EXAMPLES) {
    for (const [name, route] of Object.entries(yamlRoutes(new URL(`../config/examples/${file}`, import.meta.url)))) {
      assert.ok(!(name in routes), `route ${name} defined twice`)
      routes[name] = route
    }
  }
  return routes
}

/** The token on the one protected request `emu` got for `method path`, checked to be one it issued. */
function injectedToken (emu: Emulator, method: string, path: string): string {
  const got = emu.requests.filter((r) => r.method === method && r.path === path)
  assert.equal(got.length, 1, `${emu.url}: one ${method} ${path}`)
  const match = /^Bearer (\S+)$/.exec(got[0]!.headers.authorization ?? '')
  assert.ok(match !== null, `${method} ${path} reached the upstream with a bearer token`)
  const token = match[1]!
  assert.ok(emu.issuedAccessTokens().includes(token), `${method} ${path}: the token was issued by this API's own token endpoint`)
  return token
}

test('postman.yaml holds exactly the routes of the per-API example files', () => {
  assert.deepEqual(yamlRoutes(POSTMAN_CONFIG), exampleRoutes())
})

test('the collection itself carries no auth and targets {{baseUrl}}/<a route prefix of postman.yaml>', () => {
  const prefixes = Object.entries(yamlRoutes(POSTMAN_CONFIG)).map(([name, route]) => route.prefix ?? `/${name}`)
  const collection = readJson(COLLECTION_FILE) as PostmanCollection
  assert.equal(collection.info.schema, 'https://schema.getpostman.com/json/collection/v2.1.0/collection.json')
  assert.deepEqual(collection.auth, { type: 'noauth' })
  assert.deepEqual(collection.item.map((f) => f.name), ['Netography', 'Net API', 'NetFoundry', 'Vivacity'])
  const all = requests(collection.item)
  assert.equal(all.length, 5)
  for (const item of all) {
    // Any auth or Authorization header here would make the proxy's injection untestable.
    assert.equal(item.auth, undefined, item.name)
    assert.equal(item.request?.auth, undefined, item.name)
    assert.ok(!(item.request?.header ?? []).some((h) => h.key.toLowerCase() === 'authorization'), item.name)
    const path = /^\{\{baseUrl\}\}(\/.*)$/.exec(item.request?.url.raw ?? '')?.[1] ?? ''
    assert.ok(prefixes.some((p) => path.startsWith(`${p}/`)), `${item.name}: ${item.request?.url.raw} has a route in postman.yaml`)
    assert.ok(item.event?.some((e) => e.listen === 'test' && e.script.exec.join('\n').includes('pm.response.to.have.status(200)')), `${item.name} has tests`)
  }
  const environment = readJson(ENVIRONMENT_FILE) as { values: Array<{ key: string, value: string, enabled?: boolean }> }
  assert.deepEqual(environment.values.filter((v) => v.key === 'baseUrl').map((v) => [v.value, v.enabled]), [['http://localhost:8080', true]])
})

test('newman runs the collection green through one proxy, started from postman.yaml, that authenticates to all four seed APIs', async (t) => {
  const [netography, netApi, netfoundry, vivacity] = await Promise.all([startNetography(), startNetApi(), startNetFoundry(), startVivacity()])
  for (const emu of [netography, netApi, netfoundry, vivacity]) t.after(() => emu.close())

  // The variables postman.yaml references; the Netography upstream comes from the NETOSECRET.
  const env = {
    NETOSECRET: netography.credentials.netosecret,
    NET_API_URL: netApi.url,
    NET_API_CLIENT_ID: netApi.credentials.clientId,
    NET_API_CLIENT_SECRET: netApi.credentials.clientSecret,
    NETFOUNDRY_GATEWAY_URL: netfoundry.url,
    NETFOUNDRY_TOKEN_URL: `${netfoundry.url}/oauth/token`,
    NETFOUNDRY_CLIENT_ID: netfoundry.credentials.clientId,
    NETFOUNDRY_CLIENT_SECRET: netfoundry.credentials.clientSecret,
    NETFOUNDRY_AUDIENCE: netfoundry.credentials.audience,
    VIVACITY_URL: vivacity.url,
    VIVACITY_USERNAME: vivacity.credentials.username,
    VIVACITY_PASSWORD: vivacity.credentials.password
  }
  const proxy = await startSeedProxy(t, 'postman', env)

  const collection = readJson(COLLECTION_FILE) as PostmanCollection
  const items = requests(collection.item)
  // Every pm.test that appears in the collection must have run and passed.
  const declaredTests = items.flatMap((i) => i.event ?? []).filter((e) => e.listen === 'test')
    .reduce((n, e) => n + (e.script.exec.join('\n').match(/\bpm\.test\(/g) ?? []).length, 0)

  const summary = await runNewman({
    collection,
    environment: readJson(ENVIRONMENT_FILE) as object,
    envVar: [{ key: 'baseUrl', value: proxy.url }],
    reporters: [],
    timeoutRequest: 5_000
  })

  assert.equal(summary.error, undefined)
  assert.deepEqual(summary.run.failures.map((f) => `${f.source?.name ?? '?'}: ${f.error.test ?? ''} ${f.error.message}`), [])
  const { stats, executions } = summary.run
  assert.deepEqual([stats.requests.total, stats.requests.failed], [items.length, 0])
  assert.deepEqual(executions.map((e) => e.item.name), items.map((i) => i.name))
  assert.ok(declaredTests > items.length, 'the collection declares tests')
  assert.deepEqual([stats.assertions.total, stats.assertions.failed, stats.assertions.pending], [declaredTests, 0, 0])
  for (const e of executions) {
    assert.equal(e.requestError, undefined, e.item.name)
    assert.equal(e.response?.code, 200, e.item.name)
    assert.ok(e.request.url.toString().startsWith(`${proxy.url}/`), `${e.item.name} went to the proxy: ${e.request.url.toString()}`)
    // What newman actually sent: no credential of its own.
    assert.deepEqual(e.request.headers.all().filter((h) => h.key.toLowerCase() === 'authorization'), [], e.item.name)
    assert.ok((e.assertions ?? []).length > 0 && (e.assertions ?? []).every((a) => a.error === undefined && a.skipped !== true), e.item.name)
  }

  // Each API got its request with a token it issued itself: the proxy injected it.
  injectedToken(netography, 'GET', '/api/v1/devices')
  assert.deepEqual(netography.tokenRequests.map((r) => r.path), ['/api/v1/auth/token'], 'Netography: the API key (NETOSECRET) flow')
  injectedToken(netApi, 'GET', '/v1/users')
  assert.ok(!netApi.credentials.apiKeys.some((k) => netApi.requests[0]?.headers.authorization?.includes(k)), 'Net API: an OAuth token, not the static key')
  assert.deepEqual(netApi.tokenRequests.map((r) => r.path), ['/oauth/token'])
  injectedToken(netfoundry, 'GET', '/rest/v1/networks')
  assert.deepEqual(netfoundry.tokenRequests.map((r) => r.path), ['/oauth/token'])
  const vivacityToken = injectedToken(vivacity, 'GET', '/v3/hardware/metadata')
  assert.equal(injectedToken(vivacity, 'POST', '/v3/echo'), vivacityToken, 'one cached token for both Vivacity requests')
  assert.deepEqual(vivacity.tokenRequests.map((r) => r.path), ['/get-token'])

  // The POST body reached Vivacity byte for byte.
  const sent = items.find((i) => i.request?.method === 'POST')?.request?.body?.raw
  assert.ok(sent !== undefined)
  assert.equal(vivacity.requests.find((r) => r.method === 'POST')?.body.toString('utf8'), sent)

  for (const emu of [netography, netApi, netfoundry, vivacity]) assert.deepEqual(emu.internalErrors, [])
})
