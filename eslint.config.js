import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'state/**'] }),
  {
    files: ['src/**/*.ts'],
    rules: {
      // zod's classic API installs dozens of methods on each schema class it makes, at start-up
      // of every command; zod/mini's schemas (the same core and checks) carry none.
      // `{ z }` is zod's namespace as one value: the bundle then keeps all of zod (its 40 locales
      // too) on every command's start-up path. `* as z` lets it keep what the schemas use.
      'no-restricted-syntax': ['error', {
        selector: "ImportDeclaration[source.value='zod'][importKind!='type']",
        message: "import * as z from 'zod/mini' (zod's classic API builds its schema classes' methods at start-up)"
      }, {
        selector: "ImportDeclaration[source.value='zod/mini'][importKind!='type'] > ImportSpecifier[imported.name='z'][importKind!='type']",
        message: "import * as z from 'zod/mini' (the bundle keeps only the parts of zod the schemas use)"
      }]
    }
  }
]
