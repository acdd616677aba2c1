// The operator's console against the live coordinator (two local agents; runs after dashboard.spec.ts, whose
// session it stops): sign in, create a session from the form (a bad field first: the server's reason shows next
// to it), watch it train and finish, open its rounds timeline, download its model, start a new session from a
// checkpoint, compare the two, kick a node, find a node by name, and read the health and API pages.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { E2E_ADMIN_TOKEN } from './admin-token';

const OPERATOR = { authorization: `Bearer ${E2E_ADMIN_TOKEN}` };
/** README screenshots: written to docs/ with UPDATE_DOCS_SCREENSHOTS=1, else beside the test's other output. */
const shot = (name: string, outputPath: (name: string) => string) =>
  process.env.UPDATE_DOCS_SCREENSHOTS ? path.resolve('docs', name) : outputPath(name); // Playwright runs from the repository root

async function signIn(page: Page) {
  await page.goto('/sign-in');
  await page.getByTestId('sign-in-token').fill(E2E_ADMIN_TOKEN);
  await page.getByTestId('sign-in-submit').click();
  await expect(page).toHaveURL(/\/$/);
}

async function sessionIdFromUrl(page: Page): Promise<number> {
  await expect(page).toHaveURL(/\/sessions\/\d+$/, { timeout: 30_000 });
  return Number(new URL(page.url()).pathname.split('/').pop());
}

test('operator console: sessions, rounds, checkpoints, model download, compare, nodes, health, API', async ({ page, request }, testInfo) => {
  test.setTimeout(420_000);
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));

  // Whatever the dashboard test left running stops; the console starts its own.
  await request.post('/api/training/stop', { headers: OPERATOR });
  await signIn(page);
  await expect(page.getByTestId('nav-operator')).toHaveAttribute('data-state', 'signed-in');

  // Create: a batch of 3 is refused by the server's schema, and the reason shows next to the field.
  await page.getByRole('link', { name: 'Sessions' }).click();
  await expect(page.getByTestId('sessions-page')).toBeVisible();
  await page.getByTestId('new-session').click();
  await page.getByTestId('field-optimizer').locator('select').selectOption('sgd');
  await page.getByTestId('input-learningRate').fill('0.05');
  await page.getByTestId('input-batchSize').fill('3');
  await page.getByTestId('input-stop').selectOption('rounds');
  await page.getByTestId('input-stopValue').fill('30');
  await page.getByTestId('start-session').click();
  await expect(page.getByTestId('error-batchSize')).toContainText(/8|too small|>=/);
  await expect(page.getByTestId('input-batchSize')).toHaveAttribute('aria-invalid', 'true');
  await page.getByTestId('input-batchSize').fill('64');
  await page.getByTestId('start-session').click();
  const first = await sessionIdFromUrl(page);

  // Watch it: rounds advance, the curves fill, it completes after 30 rounds.
  await expect(page.getByTestId('session-page')).toBeVisible();
  await expect.poll(async () => Number(await page.getByTestId('session-round').textContent()), { timeout: 60_000 }).toBeGreaterThan(0);
  await expect(page.getByTestId('session-state')).toHaveAttribute('data-state', 'completed', { timeout: 180_000 });
  await expect(page.getByTestId('session-round')).toHaveText('30');

  // Its rounds timeline: a row per round, with the duration and arrivals.
  await expect(page.getByTestId('round-timeline')).toBeVisible();
  await expect(page.getByTestId('timeline-round-30')).toBeVisible();
  expect(await page.locator('[data-testid^="timeline-round-"] circle').count()).toBeGreaterThan(10);
  await expect.poll(async () => Number(await page.getByTestId('session-accuracy').getAttribute('data-points')), { timeout: 30_000 }).toBeGreaterThan(0);
  await page.screenshot({ path: shot('console-session.png', (n) => testInfo.outputPath(n)), fullPage: true });

  // Download the trained model: model.json in TensorFlow.js layers format, naming weights.bin.
  await expect(page.getByTestId('checkpoint-30')).toBeVisible();
  const download = page.waitForEvent('download');
  await page.getByTestId('download-model-json').click();
  const file = await (await download).path();
  const modelJson = JSON.parse(readFileSync(file!, 'utf8'));
  expect(modelJson).toMatchObject({ format: 'layers-model', weightsManifest: [{ paths: ['weights.bin'] }], userDefinedMetadata: { sessionId: first, round: 30 } });
  const weights = await request.get(`/api/sessions/${first}/model/weights.bin`);
  expect((await weights.body()).byteLength).toBe(109_386 * 4);

  // Start from a checkpoint: the form opens with the session's settings; the new session records where it began.
  await page.getByTestId('start-from-30').click();
  await expect(page.getByRole('heading', { name: `New session from session #${first}, round 30` })).toBeVisible();
  await expect(page.getByTestId('input-batchSize')).toHaveValue('64');
  await page.getByTestId('input-stopValue').fill('10');
  await page.getByTestId('start-session').click();
  const second = await sessionIdFromUrl(page);
  expect(second).not.toBe(first);
  await expect(page.getByText(`from session #${first} round 30`)).toBeVisible();
  await expect(page.getByTestId('session-state')).toHaveAttribute('data-state', 'completed', { timeout: 120_000 });

  // Compare the two on one chart.
  await page.getByRole('link', { name: 'Sessions' }).click();
  await page.getByLabel(`compare session ${first}`).check();
  await page.getByLabel(`compare session ${second}`).check();
  await page.getByTestId('compare-button').click();
  await expect(page).toHaveURL(new RegExp(`/sessions/compare\\?a=${first}&b=${second}`));
  const chart = page.getByTestId('compare-accuracy');
  await expect.poll(async () => Number(await chart.getAttribute('data-points')), { timeout: 30_000 }).toBeGreaterThan(0);
  // One chart, a legend entry per session.
  const panel = page.locator('.chart-panel', { has: chart }).last();
  await expect(panel).toContainText(`#${first}`);
  await expect(panel).toContainText(`#${second}`);

  // Nodes: both agents, filters, a node by name, then kick one.
  await page.getByRole('link', { name: 'Nodes' }).click();
  await expect(page.getByTestId('nodes-table')).toBeVisible();
  await expect(page.getByTestId('node-row-local-1')).toBeVisible();
  await page.getByTestId('filter-status').selectOption('left');
  await expect(page.getByTestId('nodes-empty')).toBeVisible();
  await page.getByTestId('filter-status').selectOption('');
  await page.goto('/nodes/local-1');
  await expect(page.getByTestId('node-page')).toBeVisible();
  await expect(page.getByTestId('earnings-link')).toHaveAttribute('href', /\/nodes\/\d+\/earnings$/);
  expect(Number(await page.getByTestId('node-accepted').textContent())).toBeGreaterThan(0);
  await page.goto('/nodes/no-such-node');
  await expect(page.getByTestId('node-error')).toContainText('not known');

  // Kick local-2 during a running session: disconnected, and no further credit in that session.
  await request.post('/api/training/start', { headers: { ...OPERATOR, 'content-type': 'application/json' }, data: { model: 'mlp', optimizer: 'sgd', learningRate: 0.05, batchSize: 64 } });
  await page.goto('/nodes');
  await expect(page.getByTestId('node-row-local-2')).toHaveAttribute('data-status', /training|idle/, { timeout: 30_000 });
  await page.getByTestId('kick-local-2').click();
  await expect(page.getByTestId('node-row-local-2')).toHaveAttribute('data-status', /failed|connecting|idle/, { timeout: 15_000 });
  const kicked = async () => (await (await request.get('/api/nodes/local-2')).json()) as { acceptedContributions: number; status: string };
  const round = async () => ((await (await request.get('/api/status')).json()) as { round: number }).round;
  // An update it delivered before the kick may still commit with its round; nothing after that.
  const kickedAt = await round();
  await expect.poll(round, { timeout: 30_000 }).toBeGreaterThanOrEqual(kickedAt + 2);
  const after = (await kicked()).acceptedContributions;
  const settled = await round();
  await expect.poll(round, { timeout: 30_000 }).toBeGreaterThanOrEqual(settled + 5);
  const later = await kicked();
  expect(later.acceptedContributions).toBe(after);
  expect(later.status).not.toBe('training');
  await request.post('/api/training/stop', { headers: OPERATOR });

  // Health and the API reference.
  await page.getByRole('link', { name: 'Health' }).click();
  await expect(page.getByTestId('health-status')).toHaveText('ok');
  for (const name of ['database', 'aggregator', 'agent-channel']) await expect(page.getByTestId(`component-${name}`)).toHaveAttribute('data-status', 'up');
  await page.getByRole('link', { name: 'API' }).click();
  await expect(page.locator('.swagger-ui .opblock-summary-path', { hasText: '/api/status' }).first()).toBeVisible({ timeout: 30_000 });
  await page.goto(`/sessions/${first}`);
  await expect(page.getByTestId('round-timeline')).toBeVisible();
  await page.getByTestId('round-timeline').screenshot({ path: shot('console-rounds.png', (n) => testInfo.outputPath(n)) });
  await page.screenshot({ path: testInfo.outputPath('console-end.png') });

  expect(pageErrors).toEqual([]);
});
