import os from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Two test files at a time even on a 2-core machine (vitest's default there is one): the integration
    // files spend most of their time waiting on PostgreSQL, S3 and timeouts, and each has a main database
    // and a key prefix of its own. On this 2-core machine the suite took 5 min 40 s instead of 7 min 50 s.
    maxWorkers: Math.max(2, os.availableParallelism() - 1),
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
      {
        // `npm run test:soak` only: minutes long, and it starts a PostgreSQL of its own (max_connections 100).
        test: {
          name: 'soak',
          include: ['test/soak/**/*.test.ts'],
          // The memory slopes (1 MiB/min over 40 s) need what a sample reads to be what the process keeps:
          // a full GC before each sample (--expose-gc) that compacts and sweeps before it returns, a fixed
          // young generation, and glibc keeping one arena and returning freed memory at once. Without them
          // RSS wandered by 2 to 3 MiB with no growth underneath (40-s slopes of -4 to +3 MiB/min in a
          // 5-minute run); with them by about 0.2 MiB, with a rare step of 0.7 MiB.
          execArgv: [
            '--expose-gc',
            '--compact-on-every-full-gc',
            '--no-concurrent-sweeping',
            '--no-concurrent-array-buffer-sweeping',
            '--min-semi-space-size=16',
            '--max-semi-space-size=16',
          ],
          env: { MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '131072' },
          testTimeout: 600_000,
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
