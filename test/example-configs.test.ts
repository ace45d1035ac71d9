import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { loadConfigFile, parseConfig } from '../src/config/load.js'
import { exampleWithFiles, filePaths } from './example-helpers.js'
import { buildNetosecret } from './fixtures/netography.js'
import { testPki } from './tls-certificates.js'

// The shipped configs a newcomer copies from: each must load as it is (with its
// variables set), and the README must name the file and every variable it reads,
// so an example never drifts from the schema or from its documentation.

const CONFIG_DIR = fileURLToPath(new URL('../config/', import.meta.url))
const EXAMPLES_DIR = `${CONFIG_DIR}examples/`
const TEST_DIR = fileURLToPath(new URL('./', import.meta.url))
const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

const examples = readdirSync(EXAMPLES_DIR).filter((f) => /\.ya?ml$/.test(f)).sort()
/** Every example plus the default config file `bearer-proxy` reads without `-c`. */
const shipped = [...examples.map((f) => `${EXAMPLES_DIR}${f}`), `${CONFIG_DIR}bearer-proxy.yaml`]

/** Names of the `${env:NAME}` and `${NAME}` references in a config file's text. */
function envNames (file: string): string[] {
  const names = [...readFileSync(file, 'utf8').matchAll(/\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]!)
  return [...new Set(names)].sort()
}

/** A plausible value of each variable: URLs for `*_URL` and `*_UPSTREAM`, a well-formed NETOSECRET, else a dummy string. */
function dummyEnv (names: string[]): Record<string, string> {
  return Object.fromEntries(names.map((name) => [name,
    name === 'NETOSECRET'
      ? buildNetosecret({ url: 'https://api.netography.test/api/v1', shortname: 'acme', appname: 'app', appkey: 'key', sharedsecret: 'shared' })
      : /_(URL|UPSTREAM)$/.test(name) ? `https://${name.toLowerCase().replace(/_/g, '-')}.test` : `dummy-${name.toLowerCase()}`]))
}

test('there are example configs, one per seed API flow and the Postman one', () => {
  assert.deepEqual(examples, [
    'authorization-code.yaml', 'device-code.yaml', 'dpop.yaml', 'mtls.yaml', 'net-api-oauth.yaml', 'net-api-static.yaml', 'netfoundry.yaml', 'netography-api-key.yaml',
    'netography-user.yaml', 'postman.yaml', 'token-exchange.yaml', 'vivacity.yaml'
  ])
})

for (const file of shipped) {
  const name = file.slice(CONFIG_DIR.length)
  test(`${name} validates with its variables set`, () => {
    const names = envNames(file)
    assert.ok(names.length > 0, `${name} reads its secrets from the environment`)
    // `${file:...}` paths of the target system (/var/run/secrets/...) become temporary files: PEM where a certificate or key is read.
    const config = filePaths(readFileSync(file, 'utf8')).length === 0
      ? loadConfigFile(file, dummyEnv(names))
      : parseConfig(exampleWithFiles(undefined, file, dummyFile).config, { env: dummyEnv(names) })
    assert.ok(config.routes.length > 0)
    for (const route of config.routes) assert.match(route.upstream, /^https:\/\//, `${name}: route ${route.name}`)
  })
}

/** A plausible secret file: the test PKI's PEM for a `.key` or `.crt`, else a workload token. */
function dummyFile (path: string): string {
  const pki = testPki()
  if (path.endsWith('.key')) return pki.client.key
  if (path.endsWith('ca.crt')) return pki.ca.cert
  if (path.endsWith('.crt')) return pki.client.cert
  return 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ3b3JrbG9hZCJ9.c2lnbmF0dXJl'
}

for (const file of examples) {
  test(`the README names examples/${file} and every variable it reads`, () => {
    assert.ok(README.includes(`config/examples/${file}`), `README mentions config/examples/${file}`)
    for (const name of envNames(`${EXAMPLES_DIR}${file}`)) assert.ok(README.includes(name), `README names ${name} (read by ${file})`)
  })

  test(`examples/${file} is run by a test against an emulator of its API`, () => {
    const base = file.replace(/\.ya?ml$/, '')
    const users = readdirSync(TEST_DIR).filter((f) => f.endsWith('.test.ts') && f !== 'example-configs.test.ts')
      .filter((f) => new RegExp(`['/]${base}(\\.yaml)?'`).test(readFileSync(`${TEST_DIR}${f}`, 'utf8')))
    assert.ok(users.length > 0, `some test loads ${file}`)
  })
}
