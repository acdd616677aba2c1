import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    env: { TZ: 'UTC', NEXT_TELEMETRY_DISABLED: '1' },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          environment: 'node',
          testTimeout: 600_000,
          hookTimeout: 300_000,
          // Integration tests start real servers and agent processes; on 2 cores, one file at a time.
          fileParallelism: false,
          // One retry: these tests share two cores with real processes, and CI once failed here in a way no local
          // run reproduced (three clean runs, two under load). A test that fails twice in a row still fails the
          // build; scripts/test.mjs names it at the end of the log.
          retry: 1,
        },
      },
      {
        test: {
          name: 'chaos',
          include: ['tests/chaos/**/*.test.ts'],
          environment: 'node',
          testTimeout: 900_000,
          hookTimeout: 600_000,
          // Chaos scenarios kill and restart real processes; they run alone.
          fileParallelism: false,
        },
      },
    ],
  },
});
