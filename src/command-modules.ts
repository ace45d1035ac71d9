/**
 * The commands' code, from the sources. The build replaces this module in
 * dist/cli.js with src/bundle-loader.ts, which has the same exports and loads
 * the bundles dist/serve.js and dist/tools.js instead.
 */
export type ServeCommands = typeof import('./commands/serve.js')
export type ToolCommands = typeof import('./commands/tools.js')

export async function serveCommands (): Promise<ServeCommands> {
  return import('./commands/serve.js')
}

export async function toolCommands (): Promise<ToolCommands> {
  return import('./commands/tools.js')
}
