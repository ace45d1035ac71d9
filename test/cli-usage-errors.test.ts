import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { runCli, tempDir } from './cli-helpers.js'
import { writeConfig } from './operability-helpers.js'

const LEVELS = 'fatal, error, warn, info, debug, trace, silent'

/** stderr of a usage mistake: the one message line, a blank line, then the usage. */
function firstLine (stderr: string): string {
  assert.match(stderr, /\n\nUsage:\n/, 'the usage follows')
  return stderr.split('\n', 1)[0] as string
}

test('an unknown option is named once, in balanced quotes, without parseArgs\' advice on "--"', async () => {
  for (const [args, option] of [[['check', '--no-such-flag'], '--no-such-flag'], [['-x'], '-x']] as const) {
    const result = await runCli([...args])
    assert.equal(result.code, 2)
    assert.equal(result.stdout, '')
    assert.equal(firstLine(result.stderr), `bearer-proxy: unknown option "${option}"`)
  }
})

test('--log-level with a level pino does not know is a usage error listing the levels', async () => {
  for (const level of ['loud', 'INFO', '']) {
    const result = await runCli(['serve', '--log-level', level, '-c', '/nonexistent/cfg.yaml'])
    assert.equal(result.code, 2, level)
    assert.equal(result.stdout, '')
    assert.equal(firstLine(result.stderr), `bearer-proxy: --log-level must be one of ${LEVELS}; not "${level}"`)
    assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack frames')
  }
})

test('the levels at either end of the list are taken', async (t) => {
  const file = join(tempDir(t), 'cfg.yaml')
  writeConfig(file, { routes: { a: { upstream: 'http://127.0.0.1:9', auth: { type: 'static', token: 't' } } } })
  const results = await Promise.all(['fatal', 'silent'].map((level) => runCli(['check', '--log-level', level, '-c', file])))
  for (const result of results) assert.equal(result.code, 0, result.stderr)
})

test('token with a route that does not exist: one line naming the routes, exit 2, no usage', async (t) => {
  const file = join(tempDir(t), 'cfg.yaml')
  const route = { upstream: 'http://127.0.0.1:9', auth: { type: 'static', token: 'static-token-CANARY' } }
  writeConfig(file, { routes: { a: route, b: route } })
  const result = await runCli(['token', 'nope', '-c', file])
  assert.equal(result.code, 2)
  assert.equal(result.stdout, '')
  assert.equal(result.stderr, 'bearer-proxy: no route "nope"; routes: a, b\n')
})
