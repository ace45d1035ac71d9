/**
 * `npm run build`: src/ bundled into dist/ by esbuild, one ESM file per
 * entry. Start-up of `token` in a shell loop and of a sidecar is mostly
 * module loading (resolution, package.json reads, hundreds of files), so the
 * code is bundled; what each command does not use stays in chunks it never
 * loads: the server (fastify, the proxy, the admin, prom-client, ws), the
 * demo, the status client, the Redis store and undici (imported on the first
 * token request). Types are checked apart, by `npm run typecheck`.
 */
import { build } from 'esbuild'
import { cpSync, rmSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DIST = join(ROOT, 'dist')

/**
 * Left to node_modules at run time: pino and its transports resolve files
 * (workers) by path at run time, and pino-pretty goes with them; ioredis is
 * loaded only for a Redis store and gains nothing from bundling.
 */
const EXTERNAL = ['pino', 'pino-pretty', 'thread-stream', 'ioredis']

/**
 * Entries with a name of their own: the CLI, and the modules it imports on
 * demand (they are chunks either way; as entries their files keep a stable
 * name). logger.js is also used by the tests on its own.
 */
const ENTRIES = ['cli', 'logger', 'server', 'status', 'demo'].map((name) => join(ROOT, 'src', `${name}.ts`))

rmSync(DIST, { recursive: true, force: true })
const result = await build({
  absWorkingDir: ROOT,
  entryPoints: ENTRIES,
  outdir: DIST,
  outbase: join(ROOT, 'src'),
  entryNames: '[dir]/[name]',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  // Bundled CommonJS packages call require() for Node's own modules; an ES module has none of its own.
  banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
  sourcemap: true,
  // As tsc's maps: file and line of the source, not its text (the package stays small).
  sourcesContent: false,
  metafile: true,
  // Less text to read and compile at every start (`token` about 10% faster, `serve` 2.5 MiB less
  // RSS). Names are kept, so a stack trace still names its functions; the source maps give the
  // lines (node --enable-source-maps).
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning'
})

const outputs = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith('.js'))
const holding = (input) => outputs.filter(([, output]) => Object.keys(output.inputs).includes(input)).map(([file]) => join(ROOT, file))

// cli.ts reads ../package.json from its own file: it must stay in dist/cli.js.
if (holding('src/cli.ts').join() !== join(DIST, 'cli.js')) throw new Error('build: src/cli.ts is not in dist/cli.js')

// The admin reads the status page next to its own file (`./page/…` from import.meta.url): the
// page goes next to whichever file holds it.
const admin = holding('src/admin/app.ts')
if (admin.length !== 1) throw new Error(`build: src/admin/app.ts is in ${admin.length} files, expected 1`)
for (const file of admin) cpSync(join(ROOT, 'src/admin/page'), join(dirname(file), 'page'), { recursive: true })

const size = outputs.reduce((sum, [, output]) => sum + output.bytes, 0)
process.stdout.write(`dist/: ${outputs.length} files, ${(size / 1024).toFixed(0)} KiB of JavaScript; status page in ${admin.map((f) => relative(ROOT, dirname(f))).join(', ')}/page\n`)
