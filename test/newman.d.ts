// newman ships no types; only what test/postman-newman.test.ts uses (node_modules/newman/README.md, "newman.run").
declare module 'newman' {
  import type { EventEmitter } from 'node:events'

  interface NewmanHeader { key: string, value: string }

  interface NewmanExecution {
    item: { name: string }
    /** postman-collection Request, after variables were resolved. */
    request: { method: string, url: { toString (): string }, headers: { all (): NewmanHeader[] } }
    response?: { code: number }
    assertions?: Array<{ assertion: string, skipped?: boolean, error?: { message: string } }>
    requestError?: { message: string }
  }

  interface NewmanStat { total: number, pending: number, failed: number }

  interface NewmanRunSummary {
    error?: { message: string }
    run: {
      stats: Record<'iterations' | 'items' | 'scripts' | 'prerequests' | 'requests' | 'tests' | 'assertions' | 'testScripts' | 'prerequestScripts', NewmanStat>
      failures: Array<{ error: { name: string, message: string, test?: string }, source?: { name?: string } }>
      executions: NewmanExecution[]
    }
  }

  interface NewmanRunOptions {
    collection: object | string
    environment?: object | string
    envVar?: Array<{ key: string, value: string }>
    reporters?: string | string[]
    timeout?: number
    timeoutRequest?: number
  }

  const newman: {
    run (options: NewmanRunOptions, callback: (err: Error | null, summary: NewmanRunSummary) => void): EventEmitter
  }
  export default newman
  export type { NewmanExecution, NewmanRunOptions, NewmanRunSummary }
}
