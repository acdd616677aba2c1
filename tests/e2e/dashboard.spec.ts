// The dashboard against a live coordinator with two local agents: it connects, shows the running session,
// follows rounds and accuracy as they happen, lists both nodes, and pauses and resumes training.
import { expect, test, type Page } from '@playwright/test';

const ACTIVE_ROWS = '[data-testid="node-row"][data-status="training"], [data-testid="node-row"][data-status="idle"]';

async function readNumber(page: Page, testId: string): Promise<number> {
  const raw = await page.getByTestId(testId).getAttribute('data-value');
  return raw === null || raw === '' ? Number.NaN : Number(raw);
}

async function readPoints(page: Page, testId: string): Promise<number> {
  const raw = await page.getByTestId(testId).getAttribute('data-points');
  return raw === null ? 0 : Number(raw);
}

test('dashboard follows a live session and pauses and resumes it', async ({ page }, testInfo) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));

  await page.goto('/');

  await expect(page.getByTestId('connection-state')).toHaveAttribute('data-state', 'connected', { timeout: 30_000 });
  await expect(page.getByTestId('state-badge')).toHaveText('running', { timeout: 60_000 });

  // Rounds advance.
  await expect.poll(() => readNumber(page, 'round-counter'), { timeout: 30_000 }).toBeGreaterThan(0);
  const firstRound = await readNumber(page, 'round-counter');
  await expect.poll(() => readNumber(page, 'round-counter'), { timeout: 30_000 }).toBeGreaterThan(firstRound);

  // Both agents are listed, working, with the backend they chose.
  await expect(page.locator(ACTIVE_ROWS)).toHaveCount(2, { timeout: 30_000 });
  for (const row of await page.locator(ACTIVE_ROWS).all()) {
    await expect(row.getByTestId('node-backend')).toHaveText(/^[A-Za-z][\w.-]*$/);
  }

  // The accuracy chart gains points and accuracy passes 50%.
  await expect.poll(() => readPoints(page, 'accuracy-chart'), { timeout: 60_000 }).toBeGreaterThan(0);
  const firstPoints = await readPoints(page, 'accuracy-chart');
  await expect.poll(() => readPoints(page, 'accuracy-chart'), { timeout: 60_000 }).toBeGreaterThan(firstPoints);
  await expect.poll(() => readNumber(page, 'accuracy-value'), { timeout: 90_000 }).toBeGreaterThan(0.5);
  expect(await readPoints(page, 'loss-chart')).toBeGreaterThan(0);

  await page.screenshot({ path: testInfo.outputPath('dashboard-running.png') });

  // Pause: the badge says so and the round counter stands still.
  await expect(page.getByTestId('btn-pause')).toBeEnabled();
  await expect(page.getByTestId('btn-resume')).toBeDisabled();
  await page.getByTestId('btn-pause').click();
  await expect(page.getByTestId('state-badge')).toHaveText('paused');
  await expect(page.getByTestId('btn-resume')).toBeEnabled();
  await expect(page.getByTestId('btn-pause')).toBeDisabled();
  // A round already in flight when the pause came may still close; let it.
  await page.waitForTimeout(1000);
  const pausedRound = await readNumber(page, 'round-counter');
  await page.waitForTimeout(2000);
  expect(await readNumber(page, 'round-counter')).toBe(pausedRound);

  await page.screenshot({ path: testInfo.outputPath('dashboard-paused.png') });

  // Resume: running again, and rounds advance again.
  await page.getByTestId('btn-resume').click();
  await expect(page.getByTestId('state-badge')).toHaveText('running');
  await expect.poll(() => readNumber(page, 'round-counter'), { timeout: 30_000 }).toBeGreaterThan(pausedRound);

  await expect(page.getByTestId('control-error')).toHaveCount(0);
  await expect(page.getByTestId('connection-state')).toHaveAttribute('data-state', 'connected');
  expect(pageErrors).toEqual([]);
});
