#!/usr/bin/env node
import { writeSync } from 'node:fs'
import { parseCommandLine, UsageError, usageMessage, USAGE, type Invocation, type Output } from './cli-args.js'
import { serveCommands, toolCommands } from './command-modules.js'
import { version } from './version.js'

let stdoutStream = false

/**
 * A command's output, written to descriptor 1 at once: `token` in `$(...)`
 * prints one line, for which process.stdout would load node:net and its
 * socket machinery (a pipe is a socket to Node). What a non-blocking
 * descriptor refuses for now (EAGAIN) goes on through process.stdout, and so
 * does everything after it, in order.
 */
function writeOut (text: string): void {
  if (stdoutStream) {
    process.stdout.write(text)
    return
  }
  const bytes = Buffer.from(text)
  let written = 0
  try {
    while (written < bytes.length) written += writeSync(1, bytes, written)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err
    stdoutStream = true
    process.stdout.write(bytes.subarray(written))
  }
}

/**
 * The `bearer-proxy` command. It checks the command line, then loads the
 * code of that command alone: the server's (`serve`, `demo`) or the tools'
 * (`token`, `check`, `status`, `login`, `logout`), never both. Built, each
 * is a bundle compiled from its V8 code cache (src/bundle-loader.ts).
 */
export async function main (argv: string[], io: Output = { out: (l) => { writeOut(`${l}\n`) }, err: (l) => process.stderr.write(`${l}\n`) }): Promise<number> {
  let invocation: Invocation
  try {
    invocation = parseCommandLine(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    io.err(usageMessage(err))
    return 2
  }
  switch (invocation.command) {
    case 'help':
      io.out(USAGE)
      return 0
    case 'version':
      io.out(version())
      return 0
    case 'serve':
    case 'demo':
      return (await serveCommands()).run(invocation, io)
    default:
      return (await toolCommands()).run(invocation, io)
  }
}

main(process.argv.slice(2)).then((code) => {
  if (code !== 0) process.exitCode = code
}, (err: unknown) => {
  process.stderr.write(`bearer-proxy: ${(err as Error).message}\n`)
  process.exitCode = 1
})
