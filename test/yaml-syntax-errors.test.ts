/* eslint-disable no-template-curly-in-string -- config secret references are literal "${...}" text */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfigFile } from '../src/config/load.js'
import { ConfigError } from '../src/config-error.js'
import { runCli, tempDir } from './cli-helpers.js'

const QUOTE_HINT = 'a ${...} reference inside { } or [ ] must be quoted, e.g. token: "${env:NAME}"'

/** The one issue of a config file with this text. */
function issueOf (t: TestContext, text: string): { file: string, issue: string } {
  const file = join(tempDir(t), 'cfg.yaml')
  writeFileSync(file, text)
  try {
    loadConfigFile(file, { K: 'value' })
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    assert.equal(err.issues.length, 1)
    assert.doesNotMatch(err.issues[0] as string, /\n/)
    return { file, issue: err.issues[0] as string }
  }
  assert.fail('the config loaded')
}

test('an unquoted ${env:K} in a flow mapping names line and column and says to quote it', (t) => {
  const { file, issue } = issueOf(t, 'routes:\n  x:\n    upstream: http://127.0.0.1:9\n    auth: { type: static, token: ${env:K} }\n')
  assert.equal(issue, `config: ${file} line 4, column 35: not valid YAML or JSON: ${QUOTE_HINT}`)
})

test('an unquoted ${NAME} in a flow sequence or after text gets the same advice', (t) => {
  const seq = issueOf(t, 'security:\n  allowedHosts: [ ${env:K} ]\nroutes: {}\n')
  assert.equal(seq.issue, `config: ${seq.file} line 2, column 20: not valid YAML or JSON: ${QUOTE_HINT}`)
  const embedded = issueOf(t, 'routes:\n  x:\n    upstream: http://127.0.0.1:9\n    auth: {\n      type: static,\n      token: Bearer ${K}\n    }\n')
  assert.equal(embedded.issue, `config: ${embedded.file} line 6, column 22: not valid YAML or JSON: ${QUOTE_HINT}`)
})

test('other syntax errors name line, column and the parser\'s reason', (t) => {
  const tab = issueOf(t, 'routes:\n\tx: 1\n')
  assert.equal(tab.issue, `config: ${tab.file} line 2, column 1: not valid YAML or JSON (Tabs are not allowed as indentation)`)
  const dup = issueOf(t, 'routes: {}\nroutes: {}\n')
  assert.equal(dup.issue, `config: ${dup.file} line 2, column 1: not valid YAML or JSON (Map keys must be unique)`)
  const json = issueOf(t, '{\n  "routes": {\n    "x": \n')
  assert.match(json.issue, new RegExp(`^config: ${json.file} line \\d+, column \\d+: not valid YAML or JSON \\(.+\\)$`))
})

test('the reason never quotes the file: a bad escape inside a secret stays out of the message', (t) => {
  const secret = 'CANARY-escape-\\q9f3e'
  const { issue } = issueOf(t, `routes:\n  x:\n    upstream: http://127.0.0.1:9\n    auth:\n      type: static\n      token: "${secret}"\n`)
  assert.match(issue, / line 6, column \d+: not valid YAML or JSON \(invalid escape sequence in a double-quoted string\)$/)
  assert.ok(!issue.includes('CANARY') && !issue.includes('\\q'), issue)
  const block = issueOf(t, 'routes:\n  x:\n    auth:\n      token: |CANARY-block\n        x\n')
  assert.ok(!block.issue.includes('CANARY'), block.issue)
  assert.match(block.issue, / line 4, column \d+: not valid YAML or JSON \(.+\)$/)
})

test('CLI: a YAML syntax error is exit 2 and the one line on stderr', async (t) => {
  const file = join(tempDir(t), 'cfg.yaml')
  writeFileSync(file, 'routes:\n  x:\n    upstream: http://127.0.0.1:9\n    auth: { type: static, token: ${env:K} }\n')
  const result = await runCli(['check', '-c', file], { env: { K: 'value' } })
  assert.equal(result.code, 2)
  assert.equal(result.stdout, '')
  assert.equal(result.stderr, `config: ${file} line 4, column 35: not valid YAML or JSON: ${QUOTE_HINT}\n`)
})
