// Lint guards the two mistakes that bite stream processors hardest: a promise nobody awaits
// (a lost write or a swallowed error) and import cycles between layers.
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

export default tseslint.config(
  { ignores: ['node_modules/**', '.cdcflow/**', 'dist/**', 'runtime/ui/dist/**', 'test-artifacts/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'import-x/no-cycle': 'error',
      // The layer order of docs/layers.md: each zone lists the folders its files may not import.
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            {
              target: './state',
              from: ['./checkpoints', './operators', './runtime', './jobs', './scripts', './test'],
              message: 'state/ is the bottom layer: it imports nothing of ours (docs/layers.md).',
            },
            {
              target: './checkpoints',
              from: ['./operators', './runtime', './jobs', './scripts', './test'],
              message: 'checkpoints/ may import only state/ (docs/layers.md).',
            },
            {
              target: './operators',
              from: ['./checkpoints', './runtime', './jobs', './scripts', './test'],
              message:
                'operators/ may import only state/ (docs/layers.md): the runtime drives operators, not the reverse.',
            },
            {
              target: './runtime',
              from: ['./jobs', './scripts', './test'],
              message: 'runtime/ must not import jobs, scripts or tests (docs/layers.md).',
            },
            {
              target: './jobs',
              from: ['./state', './checkpoints', './operators', './scripts', './test'],
              message: 'A job imports only the public API, runtime/index.ts (docs/layers.md).',
            },
            {
              target: './jobs',
              from: './runtime',
              except: ['./index.ts'],
              message: 'A job imports only the public API, runtime/index.ts (docs/layers.md).',
            },
            {
              target: './scripts',
              from: './test',
              except: ['./fixtures'],
              message: 'scripts/ may read test fixtures, nothing else of test/ (docs/layers.md).',
            },
          ],
        },
      ],
    },
  },
);
