import type { TokenSet } from './token.js'

/**
 * Where the broker keeps tokens beyond its own memory. Async so a shared store
 * (several replicas, with a refresh lock) can stand behind the same interface.
 */
export interface TokenStore {
  load (key: string): Promise<TokenSet | undefined>
  save (key: string, token: TokenSet): Promise<void>
  delete (key: string): Promise<void>
}

/** The default: tokens live as long as the process. */
export class MemoryTokenStore implements TokenStore {
  readonly #tokens = new Map<string, TokenSet>()

  async load (key: string): Promise<TokenSet | undefined> {
    return this.#tokens.get(key)
  }

  async save (key: string, token: TokenSet): Promise<void> {
    this.#tokens.set(key, token)
  }

  async delete (key: string): Promise<void> {
    this.#tokens.delete(key)
  }
}
