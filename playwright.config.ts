// Browser test of the dashboard against the real server, started as `npm start` starts it (the esbuild bundle) with two local agents
// on a fresh data directory. Chromium comes from Debian (/usr/bin/chromium); Playwright cannot download
// browsers here. Set E2E_BASE_URL to test a server that is already running instead of starting one.
import { defineConfig } from '@playwright/test';
import { E2E_ADMIN_TOKEN } from './tests/e2e/admin-token';
import { SERVER_ENV, SERVER_NODE_FLAGS } from './src/server/node-flags';

const port = Number(process.env.E2E_PORT ?? 3217);
const external = process.env.E2E_BASE_URL;
// A sibling of outputDir, not inside it: Playwright empties outputDir when a run starts.
const dataDir = `test-results/e2e-data-${Date.now()}`;

export default defineConfig({
  testDir: 'tests/e2e',
  outputDir: 'test-results/e2e',
  workers: 1,
  // One retry, as for the integration tests: a real browser against a real server on two shared cores.
  retries: 1,
  fullyParallel: false,
  reporter: 'list',
  // Reaching 50% test accuracy takes up to about a minute on two CPU agents; pause/resume adds some more.
  timeout: 180_000,
  expect: { timeout: 15_000 },
  use: {
    baseURL: external ?? `http://127.0.0.1:${port}`,
    browserName: 'chromium',
    viewport: { width: 1280, height: 800 },
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      // Without the networking flags Chromium keeps dialing out and gets refused.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    },
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
  },
  webServer: external
    ? undefined
    : {
        command: `node scripts/build-server.mjs && exec node ${SERVER_NODE_FLAGS.join(' ')} .build/server/main.mjs --port ${port} --nodes 2 --data-dir ${dataDir}`,
        url: `http://127.0.0.1:${port}/health`,
        timeout: 180_000,
        reuseExistingServer: false,
        // SIGTERM lets the server stop its agents and write its final checkpoint.
        gracefulShutdown: { signal: 'SIGTERM', timeout: 15_000 },
        stdout: 'pipe',
        stderr: 'pipe',
        env: { ...SERVER_ENV, NEXT_TELEMETRY_DISABLED: '1', HYPERGPU_ADMIN_TOKEN: E2E_ADMIN_TOKEN },
      },
});
