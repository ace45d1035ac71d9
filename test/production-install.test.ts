import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { clientCredentialsRoute, recordingUpstream, tokenServer } from './helpers.js'
import { CLI, ROOT, tempDir } from './cli-helpers.js'
import { call, tokenOf } from './token-lifecycle-helpers.js'
import { freePort, spawnServe, writeConfig } from './operability-helpers.js'

const NPM_CI_LIMIT_MS = 60_000

interface Instruction {
  keyword: string
  args: string
}

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function dockerInstructions (text: string): Instruction[] {
  const joined = text.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n').replace(/\\\n/g, ' ')
  return joined.split('\n').map((l) => l.trim()).filter((l) => l !== '').map((l) => {
    const [keyword = '', ...rest] = l.split(/\s+/)
    return { keyword: keyword.toUpperCase(), args: rest.join(' ') }
  })
}

/** Exec form (`["a", "b"]`) or shell form (`a b`). */
function words (args: string): string[] {
  return args.startsWith('[') ? JSON.parse(args) as string[] : args.split(/\s+/)
}

/** The environment npm runs with: no npm_* settings inherited from an `npm test` that started us. */
function npmEnv (): NodeJS.ProcessEnv {
  const keep = /^npm_config_(registry|cache|userconfig|globalconfig|proxy|https_proxy|noproxy|strict_ssl|cafile)$/i
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) || keep.test(k)))
}

test('every path the Dockerfile COPYs from the build context exists, and its ENTRYPOINT after the build', () => {
  const instructions = dockerInstructions(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
  const ignored = new Set(existsSync(join(ROOT, '.dockerignore'))
    ? readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim().replace(/^\/|\/$/g, '')).filter((l) => l !== '' && !l.startsWith('#'))
    : [])
  const copies = instructions.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')
  assert.ok(copies.length >= 2, 'the Dockerfile copies the project in')
  let fromContext = 0
  let fromStage = 0
  for (const copy of copies) {
    const all = words(copy.args)
    const flags = all.filter((w) => w.startsWith('--'))
    const [sources, dest] = [all.filter((w) => !w.startsWith('--')).slice(0, -1), all.at(-1)]
    assert.ok(sources.length > 0 && dest !== undefined, `COPY ${copy.args}`)
    const stage = flags.find((f) => f.startsWith('--from='))
    for (const source of sources) {
      if (stage === undefined) {
        fromContext++
        assert.ok(existsSync(join(ROOT, source)), `COPY source "${source}" is missing from the repository`)
        assert.ok(!ignored.has(source), `COPY source "${source}" is excluded by .dockerignore`)
      } else {
        // Out of the build stage (WORKDIR /app): what `npm run build` makes in the repository.
        fromStage++
        const relative = source.replace(/^\/app\//, '')
        assert.ok(existsSync(join(ROOT, relative)), `"${source}" from ${stage} is not produced by the build (run "npm run build")`)
      }
    }
  }
  assert.ok(fromContext > 0 && fromStage > 0)

  const entrypoint = instructions.filter((i) => i.keyword === 'ENTRYPOINT').at(-1)
  assert.ok(entrypoint !== undefined, 'the Dockerfile has an ENTRYPOINT')
  const [program, script] = words(entrypoint.args)
  assert.equal(program, 'node')
  assert.ok(script !== undefined && existsSync(join(ROOT, script)), `ENTRYPOINT script ${script} is missing after the build`)
})

test('the runtime stage\'s recipe (production dependencies only + dist) serves a proxied request', async (t) => {
  assert.ok(existsSync(CLI), `${CLI} is missing: run "npm run build" first`)
  const app = tempDir(t)
  // As the Dockerfile's runtime stage: package.json and the lock, `npm ci --omit=dev`, then dist/.
  copyFileSync(join(ROOT, 'package.json'), join(app, 'package.json'))
  copyFileSync(join(ROOT, 'package-lock.json'), join(app, 'package-lock.json'))
  const started = Date.now()
  const install = await new Promise<{ code: number | null, output: string }>((resolve) => {
    execFile('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd: app,
      env: npmEnv(),
      timeout: NPM_CI_LIMIT_MS,
      encoding: 'utf8'
    }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : (typeof err.code === 'number' ? err.code : null), output: stdout + stderr }))
  })
  t.diagnostic(`npm ci --omit=dev took ${Date.now() - started} ms`)
  assert.equal(install.code, 0, install.output)
  cpSync(join(ROOT, 'dist'), join(app, 'dist'), { recursive: true })

  // Production dependencies only: what runs is there, the toolchain is not.
  assert.ok(existsSync(join(app, 'node_modules', 'fastify', 'package.json')))
  for (const dev of ['typescript', 'tsx', 'eslint']) assert.ok(!existsSync(join(app, 'node_modules', dev)), `devDependency ${dev} was installed`)

  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const port = await freePort()
  const file = join(app, 'cfg.yaml')
  writeConfig(file, { listen: { host: '127.0.0.1', port }, admin: false, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })
  const serve = await spawnServe(t, file, app, join(app, 'dist', 'cli.js'))

  const res = await call(`http://127.0.0.1:${port}/api/hello?x=1`)
  assert.equal(res.status, 200, res.text)
  assert.equal(upstream.requests.length, 1)
  assert.equal(upstream.requests[0]?.url, '/hello?x=1')
  assert.equal(tokenOf(upstream.requests[0]), 'token-1')
  assert.equal(tokens.calls.length, 1)

  serve.child.kill('SIGTERM')
  const { code } = await serve.exited
  assert.equal(code, 0, serve.stderr())
})
