import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // An unhandled rejection anywhere fails the run (vitest's default; kept explicit).
    dangerouslyIgnoreUnhandledErrors: false,
    // The AWS SDK warns once per process that future versions will need Node 22; we pin for Node 20.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    projects: [
      {
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'] },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/setup/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
