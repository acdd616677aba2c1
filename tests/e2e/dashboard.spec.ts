// The dashboard against a live coordinator with two local agents: it connects, shows the running session read
// only while signed out (controls disabled, a way to sign in), signs in with the admin token, follows rounds and
// accuracy as they happen, lists both nodes, and pauses and resumes training; the session timeline records the
// start, the pause and the resume.
import { expect, test, type Page } from '@playwright/test';
import { E2E_ADMIN_TOKEN } from './admin-token';

const ACTIVE_ROWS = '[data-testid="node-row"][data-status="training"], [data-testid="node-row"][data-status="idle"]';

async function readNumber(page: Page, testId: string): Promise<number> {
  const raw = await page.getByTestId(testId).getAttribute('data-value');
  return raw === null || raw === '' ? Number.NaN : Number(raw);
}

async function readPoints(page: Page, testId: string): Promise<number> {
  const raw = await page.getByTestId(testId).getAttribute('data-points');
  return raw === null ? 0 : Number(raw);
}

test('dashboard follows a live session and pauses and resumes it', async ({ page, context }, testInfo) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));

  await page.goto('/');

  await expect(page.getByTestId('connection-state')).toHaveAttribute('data-state', 'connected', { timeout: 30_000 });
  await expect(page.getByTestId('state-badge')).toHaveText('running', { timeout: 60_000 });

  // Signed out, the dashboard is read only: every control is disabled, and a link says how to sign in.
  await expect(page.getByTestId('operator-state')).toHaveAttribute('data-state', 'signed-out');
  for (const button of ['btn-start', 'btn-pause', 'btn-resume', 'btn-stop']) await expect(page.getByTestId(button)).toBeDisabled();
  await page.getByTestId('sign-in-to-operate').click();
  await expect(page).toHaveURL(/\/sign-in$/);
  await page.getByTestId('sign-in-token').fill('not-the-admin-token');
  await page.getByTestId('sign-in-submit').click();
  await expect(page.getByTestId('sign-in-error')).toContainText('not the admin token');
  await page.getByTestId('sign-in-token').fill(E2E_ADMIN_TOKEN);
  await page.getByTestId('sign-in-submit').click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId('operator-state')).toHaveAttribute('data-state', 'signed-in');
  // The session cookie: page scripts cannot read it, other sites' pages cannot send it.
  const session = (await context.cookies()).find((c) => c.name === 'hypergpu_session');
  expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
  await expect(page.getByTestId('sign-in-to-operate')).toHaveCount(0);
  await expect(page.getByTestId('connection-state')).toHaveAttribute('data-state', 'connected', { timeout: 30_000 });
  await expect(page.getByTestId('state-badge')).toHaveText('running', { timeout: 30_000 });

  // Rounds advance.
  await expect.poll(() => readNumber(page, 'round-counter'), { timeout: 30_000 }).toBeGreaterThan(0);
  const firstRound = await readNumber(page, 'round-counter');
  await expect.poll(() => readNumber(page, 'round-counter'), { timeout: 30_000 }).toBeGreaterThan(firstRound);

  // Both agents are listed, working, with the backend they chose.
  await expect(page.locator(ACTIVE_ROWS)).toHaveCount(2, { timeout: 30_000 });
  for (const row of await page.locator(ACTIVE_ROWS).all()) {
    await expect(row.getByTestId('node-backend')).toHaveText(/^[A-Za-z][\w.-]*$/);
    // How long the node has been in its status, on the server's clock.
    await expect(row.getByTestId('node-status-since')).toHaveText(/just now|\d+ (s|min|h|d) ago/);
  }

  // The timeline holds the session's start.
  const timeline = page.getByTestId('timeline');
  await expect(timeline.locator('[data-testid="timeline-event"][data-kind="session-started"]')).toHaveCount(1, { timeout: 30_000 });

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

  // The timeline, newest first, has the resume above the pause above the start.
  const kinds = () => timeline.getByTestId('timeline-event').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-kind')));
  await expect
    .poll(async () => {
      const list = await kinds();
      const [resumed, paused, started] = ['session-resumed', 'session-paused', 'session-started'].map((k) => list.indexOf(k));
      return resumed !== -1 && resumed < paused && paused < started;
    })
    .toBe(true);
  // No coordinator restart in this run: no restart markers on the charts.
  await expect(page.getByTestId('restart-marker')).toHaveCount(0);

  await expect(page.getByTestId('control-error')).toHaveCount(0);
  await expect(page.getByTestId('connection-state')).toHaveAttribute('data-state', 'connected');
  expect(pageErrors).toEqual([]);
});
