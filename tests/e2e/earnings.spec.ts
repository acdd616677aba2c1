// "Why did I earn this" in the browser, against the live e2e coordinator: two simulated agents join over the
// real protocol, one sending NaN updates (rejected at the gate, with the reason) and one sending fabricated
// updates (accepted, then caught by an audit). A session with large shards closes an epoch every round or two,
// so the audits resolve within the test. Each node's earnings page shows what happened and why.
import { expect, test } from '@playwright/test';
import { SimAgent } from '../../bench/lib/sim-agent';
import { fabricatedPayload, nanPayload } from '../support/audit-fixtures';
import { E2E_ADMIN_TOKEN } from './admin-token';

const operator = { authorization: `Bearer ${E2E_ADMIN_TOKEN}`, 'content-type': 'application/json' };

test('the earnings page shows a rejected update with its reason, and audit outcomes', async ({ page, baseURL }) => {
  test.setTimeout(300_000);
  const api = (path: string, body?: unknown) =>
    fetch(`${baseURL}${path}`, body === undefined ? { headers: operator } : { method: 'POST', headers: operator, body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
  // 10,000 samples per node per round: with the two local agents and these two, an epoch of MNIST closes
  // every round or two, and with it that epoch's audits.
  await api('/api/training/stop', {});
  const started = await api('/api/training/start', { batchSize: 10_000, evalEvery: 100, checkpointEvery: 100 });
  expect(started.status, JSON.stringify(started.body)).toBe(201);
  const issued = await api('/api/join-tokens', { label: 'earnings e2e' });
  expect(issued.status).toBe(201);
  const url = `${baseURL!.replace(/^http/, 'ws')}/agent`;
  const nan = new SimAgent(url, 'nan-agent', 200, issued.body.token, nanPayload);
  const fabricator = new SimAgent(url, 'fabricator', 200, issued.body.token, fabricatedPayload(1));
  try {
    await nan.connect();
    await fabricator.connect();

    // The NaN sender: its updates are refused at the gate, and the page says which rule and why.
    await page.goto('/nodes/nan-agent/earnings');
    await expect(page.getByTestId('earnings-page')).toBeVisible({ timeout: 60_000 });
    const rejected = page.locator('[data-testid="earnings-round"][data-status="rejected"]').first();
    await expect(rejected).toBeVisible({ timeout: 60_000 });
    await expect(rejected.getByTestId('round-reason')).toContainText('NON_FINITE');
    await expect(rejected.getByTestId('round-reason')).toContainText('NaN or infinite values');

    // The fabricator: accepted at the gate, caught by the audit of its epoch, which it forfeits.
    await page.goto('/nodes/fabricator/earnings');
    await expect(page.getByTestId('earnings-page')).toBeVisible({ timeout: 60_000 });
    await expect(page.getByTestId('round-audit').filter({ hasText: 'failed' }).first()).toContainText(/tolerance 0\.001/, { timeout: 180_000 });
    await expect(page.getByTestId('epoch-forfeited').first()).toContainText('AUDIT_FAILED', { timeout: 60_000 });

    // An honest local agent's audits pass, and its page is reachable by numeric id too.
    const nodes = (await api('/api/nodes')).body.nodes as { id: number; name: string }[];
    const honest = nodes.find((n) => n.name.startsWith('local-'))!;
    await page.goto(`/nodes/${honest.id}/earnings`);
    await expect(page.getByTestId('round-audit').filter({ hasText: 'passed' }).first()).toBeVisible({ timeout: 120_000 });
    await expect(page.locator('[data-testid="earnings-epoch"][data-forfeited="true"]')).toHaveCount(0);

    await page.goto('/nodes/nobody-by-this-name/earnings');
    await expect(page.getByTestId('earnings-error')).toContainText('not known', { timeout: 30_000 });
  } finally {
    nan.close();
    fabricator.close();
    // Leave the coordinator as the other specs expect it: a session with the default settings.
    await api('/api/training/stop', {});
    await api('/api/training/start', {});
  }
});
