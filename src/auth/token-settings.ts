/**
 * The `tokens` settings the broker and its renewal policy read (SPEC
 * "Config"). Declared here, not taken from the config schema, so the token
 * machinery does not depend on how a config is loaded; the schema's output
 * matches it.
 */
export interface TokenSettings {
  /** Share of a token's lifetime after which it is renewed in the background. */
  refreshAhead: number
  /** Seconds before expiry a token stops being sent. */
  minValidity: number
  /** Lifetime (s) assumed when neither `expires_in` nor a JWT `exp` says. */
  defaultTtl: number
  /** Token requests per sliding minute to one token endpoint, shared by its routes. */
  maxRequestsPerMinute: number
}
