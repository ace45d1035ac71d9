/**
 * `npm run build`: src/ bundled into dist/ by esbuild. Start-up of `token` in
 * a shell loop and of a sidecar is mostly loading and compiling code, so:
 * - dist/cli.js, the `bearer-proxy` command, is small: it checks the command
 *   line and loads one of two bundles, never both: dist/serve.js (`serve`,
 *   `demo`: fastify, the proxy, the admin, prom-client, ws) or dist/tools.js
 *   (`token`, `check`, `status`, `login`, `logout`). Code a command may not
 *   need (undici, the Redis store, the status client, the demo) is evaluated
 *   only when first used.
 * - The bundles are CommonJS, which Node runs without its ES module loader,
 *   and each is compiled from a V8 code cache made here after a warm-up run
 *   (scripts/code-cache.mjs; loaded by src/bundle-loader.ts). A Node other
 *   than the one that built dist/ ignores the cache and compiles as usual.
 * Types are checked apart, by `npm run typecheck`.
 */
import { build } from 'esbuild'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DIST = join(ROOT, 'dist')

/**
 * Left to node_modules at run time: pino's transports resolve files (workers)
 * by path at run time, so thread-stream, which runs them, and pino-pretty stay
 * there; ioredis is loaded only for a Redis store and gains nothing from
 * bundling. pino itself is bundled into dist/serve.js (see SERVE_EXTERNAL).
 */
const EXTERNAL = ['pino', 'pino-pretty', 'thread-stream', 'ioredis']

/**
 * dist/serve.js bundles pino (29 files a start would otherwise resolve and
 * compile one by one): the server never starts a pino transport, the one part
 * of pino that finds its files by path (its worker, through thread-stream,
 * which is therefore not in that bundle: NOT_IN_SERVE).
 */
const SERVE_EXTERNAL = EXTERNAL.filter((name) => name !== 'pino' && name !== 'thread-stream')

/**
 * Packages fastify requires only for what the server never does, replaced in
 * dist/serve.js by a module that throws, naming why: the schema compilers
 * (both of its apps are given compilers that refuse schemas,
 * src/proxy/no-schemas.ts, so fastify never requires its own) and
 * light-my-request (`inject()`: the tests that use it run on the sources).
 * A quarter of the bundle (ajv, fast-json-stringify and what they import), text
 * the server would otherwise read and hold for nothing.
 */
const NOT_IN_SERVE = {
  '@fastify/ajv-compiler': 'schema validation: no route of the server declares a schema (src/proxy/no-schemas.ts)',
  '@fastify/fast-json-stringify-compiler': 'schema serialization: no route of the server declares a schema (src/proxy/no-schemas.ts)',
  'light-my-request': 'fastify\'s inject(): the server only listens',
  // pino requires it at load, and calls it only to start a transport. Not a dependency of the
  // package: resolved from dist/, it would be found only where npm happened to hoist it.
  'thread-stream': 'pino transports: the server writes its logs itself (src/logger.ts)'
}

function notInBundle (modules) {
  const filter = new RegExp(`^(${Object.keys(modules).map((p) => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})$`)
  return {
    name: 'not-in-bundle',
    setup (builder) {
      builder.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'not-in-bundle' }))
      builder.onLoad({ filter: /.*/, namespace: 'not-in-bundle' }, (args) => ({
        contents: `module.exports = function () { throw new Error(${JSON.stringify(`${args.path} is not in this bundle, for ${modules[args.path]}`)}) }`,
        loader: 'js'
      }))
    }
  }
}

/**
 * The bundles the command loads (src/bundle-loader.ts): the server's, the tools', undici for the
 * tools; and logger.js, which the tests also load on its own.
 */
const BUNDLES = {
  serve: 'src/commands/serve.ts',
  tools: 'src/commands/tools.ts',
  undici: 'src/auth/undici-parts.ts',
  prometheus: 'src/telemetry/prometheus.ts',
  ws: 'ws',
  logger: 'src/logger.ts'
}

const BANNER = "'use strict'; const __bundleUrl = require('node:url').pathToFileURL(__filename).href;"

/**
 * The bundles src/bundle-loader.ts compiles hold their module wrapper
 * themselves: the file's text is the script V8 compiles, with no copy of
 * half a megabyte made to wrap it at every start. Run as a script, the file's
 * value is the wrapper function; loaded by Node's own loader (under
 * --enable-source-maps, where `this` is the module's exports), it calls the
 * wrapper at once, as any CommonJS module.
 */
const WRAPPED = {
  banner: { js: `(this === globalThis ? (wrapper) => wrapper : (wrapper) => wrapper.call(exports, exports, require, module, __filename, __dirname))(function (exports, require, module, __filename, __dirname) {${BANNER}` },
  footer: { js: '})' }
}

const common = {
  absWorkingDir: ROOT,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  // The sources read files next to their own (`new URL('../package.json', import.meta.url)`, the
  // status page): in a bundle, next to the bundle, which sits where src/ does, one folder down.
  define: { 'import.meta.url': '__bundleUrl' },
  // 'use strict' first: esbuild's own directive comes after the banner, where it would not count.
  banner: { js: BANNER },
  sourcemap: true,
  // As tsc's maps: file and line of the source, not its text (the package stays small).
  sourcesContent: false,
  metafile: true,
  // Less text to read and compile at every start. Names are kept, so a stack trace still names
  // its functions; the source maps give the lines (node --enable-source-maps).
  minifyWhitespace: true,
  minifySyntax: true,
  // Licence comments go to BUNDLE.LEGAL.txt: the bundles stay ASCII, which V8 holds in one byte a
  // character (one non-ASCII letter anywhere would double the memory of the whole source).
  legalComments: 'linked',
  logLevel: 'warning'
}

/** In dist/cli.js, the commands come from the bundles (src/bundle-loader.ts), not from the sources. */
const commandsFromBundles = {
  name: 'commands-from-bundles',
  setup (builder) {
    builder.onResolve({ filter: /^\.\/command-modules\.js$/ }, () => ({ path: './bundle-loader.js', external: true }))
  }
}

/**
 * Modules imported on first use that are bundles of their own, loaded then by
 * src/bundle-loader.ts: in dist/tools.js, undici (the first token request;
 * `token` answered from the store does not even read it; the server makes
 * requests at once and holds undici itself); in dist/serve.js, prom-client
 * (only with an admin port) and ws (at the first websocket upgrade).
 */
const APART = {
  tools: { './undici-parts.js': 'undici' },
  serve: { './prometheus.js': 'prometheus', ws: 'ws' }
}

/** Each dynamic import named in `apart` becomes a require of its own bundle at that moment. */
function bundlesApart (apart) {
  const filter = new RegExp(`^(${Object.keys(apart).map((p) => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})$`)
  return {
    name: 'bundles-apart',
    setup (builder) {
      builder.onResolve({ filter }, (args) => args.kind === 'dynamic-import' ? { path: apart[args.path], namespace: 'bundle-apart' } : undefined)
      builder.onLoad({ filter: /.*/, namespace: 'bundle-apart' }, (args) => ({
        contents: `module.exports = require('./bundle-loader.js').loadBundle(require('node:path').join(__dirname, ${JSON.stringify(`${args.path}.js`)})).exports`,
        loader: 'js'
      }))
      builder.onResolve({ filter: /^\.\/bundle-loader\.js$/, namespace: 'bundle-apart' }, (args) => ({ path: args.path, external: true }))
    }
  }
}

rmSync(DIST, { recursive: true, force: true })
const results = await Promise.all([
  build({ ...common, entryPoints: { cli: 'src/cli.ts', 'bundle-loader': 'src/bundle-loader.ts' }, outdir: DIST, plugins: [commandsFromBundles] }),
  ...Object.entries(BUNDLES).map(([name, entry]) => build({
    ...common,
    ...(name === 'logger' ? {} : WRAPPED),
    entryPoints: { [name]: entry },
    outdir: DIST,
    ...(name === 'serve' ? { external: SERVE_EXTERNAL } : {}),
    plugins: [...(name in APART ? [bundlesApart(APART[name])] : []), ...(name === 'serve' ? [notInBundle(NOT_IN_SERVE)] : [])]
  }))
])
// dist/ holds CommonJS files under a package of ES modules.
writeFileSync(join(DIST, 'package.json'), `${JSON.stringify({ type: 'commonjs' })}\n`)
// The admin serves its status page from `./page/` next to the file holding it: dist/serve.js.
cpSync(join(ROOT, 'src/admin/page'), join(DIST, 'page'), { recursive: true })

// A bundle must not import() at run time: src/bundle-loader.ts runs it as a plain script.
for (const result of results) {
  for (const [file, output] of Object.entries(result.metafile.outputs)) {
    const dynamic = output.imports.filter((i) => i.kind === 'dynamic-import' && i.external)
    if (dynamic.length > 0) throw new Error(`build: ${file} imports ${dynamic.map((i) => i.path).join(', ')} at run time`)
  }
}

// Every bundle must be ASCII: src/bundle-loader.ts reads them as Latin-1.
for (const [file] of results.flatMap((r) => Object.entries(r.metafile.outputs))) {
  if (file.endsWith('.js') && readFileSync(join(ROOT, file)).some((byte) => byte > 0x7f)) throw new Error(`build: ${file} is not ASCII`)
}

const CACHED = ['tools', 'serve', 'undici']
for (const bundle of CACHED) {
  // No NODE_OPTIONS: a cache is made with no V8 flags, as the command runs.
  const { NODE_OPTIONS, ...env } = process.env
  execFileSync(process.execPath, [join(ROOT, 'scripts/code-cache.mjs'), bundle], { stdio: 'inherit', env })
}
// What src/bundle-loader.ts checks before it uses a cache: this Node, this architecture, the
// SHA-256 of the bundle and of its cache.
const sha256 = (file) => createHash('sha256').update(readFileSync(join(DIST, file))).digest('hex')
writeFileSync(join(DIST, 'code-cache.json'), `${JSON.stringify({
  node: process.version,
  arch: process.arch,
  bundles: Object.fromEntries(CACHED.map((b) => [`${b}.js`, { source: sha256(`${b}.js`), cache: sha256(`${b}.js.v8-cache`) }]))
}, null, 2)}\n`)

const outputs = results.flatMap((r) => Object.entries(r.metafile.outputs)).filter(([file]) => file.endsWith('.js'))
const kib = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`
process.stdout.write(`dist/: ${outputs.map(([file, output]) => `${file.replace(/^dist\//, '')} ${kib(output.bytes)}`).join(', ')}; code caches: ${CACHED.map((b) => `${b} ${kib(statSync(join(DIST, `${b}.js.v8-cache`)).size)}`).join(', ')}\n`)
