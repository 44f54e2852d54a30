import { defineConfig, type Options } from 'tsup';

const common: Options = {
  sourcemap: true,
  target: 'node20',
  platform: 'node',
  splitting: false,
  // `import.meta.url` in the CJS build, used to find the shipped migrations folder.
  shims: true,
};

export default defineConfig([
  {
    ...common,
    entry: { index: 'src/index.ts', express: 'src/integrations/express.ts', fastify: 'src/integrations/fastify.ts', bullmq: 'src/integrations/bullmq.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
  },
  {
    ...common,
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    banner: { js: '#!/usr/bin/env node' },
  },
]);
