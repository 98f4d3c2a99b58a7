// Lint rules that catch what the compiler does not: promises nobody awaits, import cycles, and imports that run
// against the layer order of docs/architecture.md (api -> client -> workflows; worker -> activities -> runtime,
// stores; never backwards). Type-only imports cross layers freely: they vanish at run time.
import importX from 'eslint-plugin-import-x';
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
const below = (...dirs) => `(^|/)(${dirs.join('|')})(/|\\.js$)`;

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'models/', 'bench/results/', 'coverage/'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
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
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      'import-x/no-cycle': 'error',
    },
  },
  layer(
    ['workflows/**'],
    '^(?!@temporalio/workflow$|\\./|\\.\\./src/contracts/(item-failure-type|status)\\.js$)',
    'workflow code runs in the deterministic sandbox: only @temporalio/workflow, sibling files, types, and dependency-free contracts',
  ),
  layer(
    ['activities/**'],
    below('api', 'client', 'cli', 'worker', 'server'),
    'activities sit below the API and the client',
  ),
  layer(
    ['src/runtime/**', 'src/stores/**', 'src/webhooks/**', 'src/contracts/**'],
    below('api', 'client', 'cli', 'activities', 'workflows', 'worker', 'server'),
    'runtime, stores, webhooks and contracts are the bottom layer',
  ),
  layer(['src/client/**'], below('api', 'cli', 'activities', 'worker', 'server'), 'the client sits below the API'),
  layer(['src/api/**'], below('activities', 'cli', 'worker'), 'the API reaches workers only through Temporal'),
);
