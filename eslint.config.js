import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'state/**'] }),
  {
    files: ['src/**/*.ts'],
    rules: {
      // `{ z }` is zod's namespace as one value: the bundle then keeps all of zod (its 40 locales
      // too) on every command's start-up path. `* as z` lets it keep what the schemas use.
      'no-restricted-syntax': ['error', {
        selector: "ImportDeclaration[source.value='zod'][importKind!='type'] > ImportSpecifier[imported.name='z'][importKind!='type']",
        message: "import * as z from 'zod' (the bundle keeps only the parts of zod the schemas use)"
      }]
    }
  }
]
