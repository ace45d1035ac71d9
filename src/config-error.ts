/**
 * Configuration mistakes: one line each, naming the key path (exit code 2).
 * Apart from src/errors.ts, whose HTTP errors the short-lived commands never load.
 */
export class ConfigError extends Error {
  readonly issues: string[]
  constructor (issues: string[]) {
    super(issues.join('\n'))
    this.name = 'ConfigError'
    this.issues = issues
  }
}
