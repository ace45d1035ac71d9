/**
 * Fastify's `schemaController` option for an app whose routes declare no
 * schemas: the proxy's and the admin's (bodies are never parsed, answers are
 * written as they come or as the proxy's own JSON). Left to itself, fastify
 * loads ajv and fast-json-stringify whenever an app is made, about a tenth of
 * serve's start-up, to compile schemas no route has. A route given a schema
 * fails at start-up, naming this.
 */
export const noSchemas = {
  compilersFactory: {
    buildValidator: (): never => { throw new Error('no route of this app may declare a schema (proxy/no-schemas.ts): there is no validator') },
    buildSerializer: (): never => { throw new Error('no route of this app may declare a schema (proxy/no-schemas.ts): there is no serializer') }
  }
}
