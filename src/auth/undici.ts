/** The parts of undici the token machinery uses. */
export type Undici = typeof import('./undici-parts.js')

let undici: Promise<Undici> | undefined

/**
 * undici, loaded the first time a request is made rather than at start-up:
 * it is the largest module the token machinery uses, and `token` answered
 * from the store (a sidecar's `$(bearer-proxy token x)` in a loop) makes no
 * request at all.
 */
export async function loadUndici (): Promise<Undici> {
  undici ??= import('./undici-parts.js')
  return await undici
}
