// Lint rules that catch what the compiler does not: promises nobody awaits, import cycles, and imports that run
// against the layer order of docs/architecture.md (api -> client -> workflows; worker -> activities -> runtime,
// stores; never backwards). Type-only imports cross layers freely: they vanish at run time.
import fs from 'node:fs';
import importX, { createNodeResolver } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/** A layer may not import, at run time, a path that matches `forbidden` (a regular expression). */
const layer = (files, forbidden, message) => ({
  files,
  rules: {
    '@typescript-eslint/no-restricted-imports': [
      'error',
      { patterns: [{ regex: forbidden, allowTypeImports: true, message }] },
    ],
  },
});
/**
 * src/contracts modules that import nothing (plain constants): the only contracts workflow code may import as
 * values. test/workflow/determinism.test.ts applies the same rule and bundles the result.
 */
const dependencyFreeContracts = fs
  .readdirSync(new URL('./src/contracts/', import.meta.url))
  .filter((f) => f.endsWith('.ts'))
  .filter(
    (f) =>
      !/^(import|export)\s[^;]*?from\s+'/m.test(
        fs.readFileSync(new URL(`./src/contracts/${f}`, import.meta.url), 'utf8'),
      ),
  )
  .map((f) => f.replace(/\.ts$/, ''));
const below = (...dirs) => `(^|/)(${dirs.join('|')})(/|\\.js$)`;

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'models/', 'bench/results/', 'coverage/'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    settings: {
      // Sources import each other as './x.js' (NodeNext); the resolver must find the x.ts behind it, or
      // no-cycle sees no edges at all.
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [
        createNodeResolver({ extensions: ['.ts', '.js', '.json'], extensionAlias: { '.js': ['.ts', '.js'] } }),
      ],
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test collects test() and describe() itself; their promises are not the caller's to await.
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      'import-x/no-cycle': 'error',
    },
  },
  layer(
    ['workflows/**'],
    `^(?!@temporalio/workflow$|\\./|\\.\\./src/contracts/(${dependencyFreeContracts.join('|')})\\.js$)`,
    'workflow code runs in the deterministic sandbox: only @temporalio/workflow, sibling files, types, and dependency-free contracts',
  ),
  layer(
    ['activities/**'],
    below('api', 'client', 'cli', 'workflows', 'worker', 'server'),
    'activities sit below the API, the client and the workflows',
  ),
  layer(
    ['src/runtime/**', 'src/stores/**', 'src/webhooks/**'],
    below('api', 'client', 'cli', 'activities', 'workflows', 'worker', 'server'),
    'runtime, stores and webhooks sit below the activities and the client',
  ),
  layer(
    ['src/contracts/**'],
    below('api', 'client', 'cli', 'activities', 'workflows', 'worker', 'server', 'runtime', 'stores', 'webhooks'),
    'contracts are the bottom layer: the schemas and closed sets every other layer shares',
  ),
  layer(['src/client/**'], below('api', 'cli', 'activities', 'worker', 'server'), 'the client sits below the API'),
  layer(
    ['src/cluster/**'],
    below('api', 'cli', 'activities', 'workflows', 'worker', 'server'),
    "the cluster runner starts batchline's processes: it reaches them through their command line and the client",
  ),
  layer(
    ['src/api/**'],
    below('activities', 'workflows', 'cli', 'worker'),
    'the API reaches workflows through the client, and workers only through Temporal',
  ),
);
