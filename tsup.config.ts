import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', express: 'src/integrations/express.ts', fastify: 'src/integrations/fastify.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: false,
  // `import.meta.url` in the CJS build, used to find the shipped migrations folder.
  shims: true,
});
