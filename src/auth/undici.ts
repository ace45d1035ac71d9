/** undici's exports; its default export is the whole module, as bundled and as loaded from node_modules. */
type Undici = typeof import('undici').default

let undici: Promise<Undici> | undefined

/**
 * undici, loaded the first time a request is made rather than at start-up:
 * it is the largest module the token machinery uses, and `token` answered
 * from the store (a sidecar's `$(bearer-proxy token x)` in a loop) makes no
 * request at all.
 */
export async function loadUndici (): Promise<Undici> {
  // The default export: a bundle's dynamic import of a CommonJS module has no named ones.
  undici ??= import('undici').then((module) => module.default)
  return await undici
}
