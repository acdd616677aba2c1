// The Rewards page against a real coordinator settling on its own local anvil: one real agent paid at anvil's
// dev account #2 trains a small dataset until an epoch settles; the browser connects that address with the mock
// wallet (anvil signs for its unlocked dev accounts, so the page's claim is a real transaction), sees what it
// earned and may claim, claims, and sees the claimed amount follow.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { writeDigits } from '../support/digits';
import { eventually, OPERATOR_HEADERS, ROOT, startServer, tempDataDir, waitForHttp, type ServerProcess } from '../support/server-process';

const PAYOUT = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC'; // anvil dev account #2

let server: ServerProcess;
let agent: ChildProcess | null = null;
let work = '';

test.beforeAll(async () => {
  test.setTimeout(240_000);
  work = tempDataDir('hypergpu-rewards-e2e-');
  const digits = path.join(work, 'digits');
  writeDigits(digits, 400, 100);
  server = await startServer(['--no-session', '--nodes', '0', '--dataset', `digits=${digits}`], {
    dataDir: path.join(work, 'data'),
    env: { HYPERGPU_REWARD_PER_SAMPLE: (10n ** 15n).toString() },
  });
  await waitForHttp(`${server.baseUrl}/health`, 180_000);
  agent = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'src/agent/cli.ts'), '--coordinator', `ws://127.0.0.1:${server.port}/agent`, '--name', 'e2e-node', '--state-dir', path.join(work, 'agent'), '--dataset', `digits=${digits}`, '--payout-address', PAYOUT],
    { cwd: ROOT, stdio: 'ignore' },
  );
  const res = await fetch(`${server.baseUrl}/api/training/start`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...OPERATOR_HEADERS },
    body: JSON.stringify({ dataset: 'digits', batchSize: 50, maxSamples: 800, evalEvery: 5, checkpointEvery: 5 }),
  });
  expect(res.status).toBe(201);
  await eventually(
    async () => (await (await fetch(`${server.baseUrl}/api/blockchain/rewards?address=${PAYOUT}`)).json()) as { claimable: string | null },
    (r) => r.claimable !== null && BigInt(r.claimable) > 0n,
    180_000,
    'an epoch settled and claimable at the payout address',
  );
});

test.afterAll(async () => {
  agent?.kill('SIGTERM');
  await server?.stop('SIGTERM');
  if (work) rmSync(work, { recursive: true, force: true });
});

test('connect the mock wallet, see earned and claimable, claim, see claimed follow', async ({ page }) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(`${server.baseUrl}/rewards?wallet=${PAYOUT}`);
  await expect(page.getByTestId('chain-info')).toContainText('10143');
  await expect(page.getByTestId('no-wallet')).toBeVisible();
  await page.getByTestId('connect-mock').click();
  await expect(page.getByTestId('wallet-address')).toHaveText(PAYOUT);

  const earned = page.getByTestId('reward-earned');
  await expect(earned).not.toHaveAttribute('data-units', '');
  const units = BigInt((await earned.getAttribute('data-units'))!);
  expect(units).toBeGreaterThan(0n);
  await expect(page.getByTestId('reward-claimable')).toHaveAttribute('data-units', /^[1-9]\d*$/);
  await expect(page.getByTestId('reward-claimed')).toHaveAttribute('data-units', '0');
  await expect(page.getByTestId('reward-epochs')).toContainText('e2e-node');
  await expect(page.getByTestId('leaderboard')).toContainText('e2e-node');

  // Claim what is committed now (more epochs may settle meanwhile: claimed then trails earned).
  const claimable = BigInt((await page.getByTestId('reward-claimable').getAttribute('data-units'))!);
  await page.getByTestId('claim').click();
  await expect(page.getByTestId('claim-stage')).toHaveText('claimed', { timeout: 30_000 });
  await expect.poll(async () => BigInt((await page.getByTestId('reward-claimed').getAttribute('data-units')) || '0'), { timeout: 15_000 }).toBeGreaterThanOrEqual(claimable);
  expect(pageErrors).toEqual([]);
});

test('the contract owner\'s wallet signs in as the operator (Sign-In with Ethereum)', async ({ page }) => {
  const owner = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266'; // anvil dev account #0: the local chain's deployer
  await page.goto(`${server.baseUrl}/rewards?wallet=${owner}`);
  await page.getByTestId('connect-mock').click();
  await page.getByTestId('siwe').click();
  await expect(page.getByTestId('owner-signed-in')).toBeVisible();
  const session = await page.evaluate(async () => (await fetch('/api/auth/session')).json());
  expect(session).toMatchObject({ signedIn: true, via: 'session' });
  // Another wallet sees no such button, and a replayed or foreign message is refused.
  const refused = await page.evaluate(async () => (await fetch('/api/auth/siwe', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: 'hello', signature: `0x${'11'.repeat(65)}` }) })).status);
  expect(refused).toBe(403);
});
