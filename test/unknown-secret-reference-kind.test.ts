/* eslint-disable no-template-curly-in-string -- config secret references are literal "${...}" text */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseConfig } from '../src/config/load.js'
import { runCli, tempDir } from './cli-helpers.js'
import { parseIssues } from './config-helpers.js'

const UPSTREAM = 'http://127.0.0.1:9'

test('${vault:...} is an unknown reference kind naming the key path and the kind, not a missing variable', () => {
  const issues = parseIssues({ routes: { x: { upstream: UPSTREAM, auth: { type: 'static', token: '${vault:secret/x}' } } } })
  assert.deepEqual(issues, ['routes.x.auth.token: unknown secret reference kind "vault" (use ${env:NAME} or ${file:PATH})'])
})

test('the rest of an unknown reference is never shown: it may be the secret itself', () => {
  const canary = 'CANARY-inline-4c1d'
  const issues = parseIssues({ routes: { x: { upstream: UPSTREAM, auth: { type: 'static', token: `Bearer \${literal:${canary}}` } } } })
  assert.deepEqual(issues, ['routes.x.auth.token: unknown secret reference kind "literal" (use ${env:NAME} or ${file:PATH})'])
})

test('env and file kinds and ${NAME} still resolve next to it', () => {
  const config = parseConfig({ routes: { x: { upstream: UPSTREAM, auth: { type: 'static', token: '${env:A}-${B}' } } } }, { env: { A: 'a', B: 'b' } })
  assert.equal(config.routes[0]?.auth.type === 'static' ? config.routes[0].auth.token : undefined, 'a-b')
})

test('CLI: an unknown reference kind is exit 2 and that one line', async (t) => {
  const file = join(tempDir(t), 'cfg.yaml')
  writeFileSync(file, `routes:\n  x:\n    upstream: ${UPSTREAM}\n    auth:\n      type: static\n      token: \${vault:secret/x}\n`)
  const result = await runCli(['check', '-c', file])
  assert.equal(result.code, 2)
  assert.equal(result.stdout, '')
  assert.equal(result.stderr, 'routes.x.auth.token: unknown secret reference kind "vault" (use ${env:NAME} or ${file:PATH})\n')
})
