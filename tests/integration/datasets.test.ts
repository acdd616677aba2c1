// Datasets by name, for real: a server that registered a small IDX folder (--dataset digits=DIR; its local agent
// gets the same flag), an API that takes ids only and never shows a folder, a registered dataset trained end to
// end, and an agent without that dataset configured that stays out of the session and says how to fix it.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { writeDigits as writeGzippedDigits } from '../support/digits';
import { eventually, OPERATOR_HEADERS, ROOT, startServer, tempDataDir, waitForHttp, type ServerProcess } from '../support/server-process';

const writeDigits = (dir: string, train: number, test: number) => writeGzippedDigits(dir, train, test, { gzip: true });

describe('datasets by name', () => {
  const work = tempDataDir('hypergpu-datasets-it-');
  const dir = path.join(work, 'private-folder', 'digits');
  let server: ServerProcess;
  let stranger: ChildProcess | null = null;
  let strangerOutput = '';
  const get = async (p: string) => {
    const res = await fetch(`${server.baseUrl}${p}`);
    return { status: res.status, text: await res.clone().text(), body: (await res.json()) as any };
  };
  const post = async (p: string, body: unknown) => {
    const res = await fetch(`${server.baseUrl}${p}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...OPERATOR_HEADERS } });
    return { status: res.status, text: await res.clone().text(), body: (await res.json()) as any };
  };

  beforeAll(async () => {
    writeDigits(dir, 2000, 400);
    server = await startServer(['--no-dashboard', '--no-session', '--nodes', '1', '--dataset', `digits=${dir}`], { dataDir: path.join(work, 'data') });
    await waitForHttp(`${server.baseUrl}/health`);
    // An agent on a machine where 'digits' is not configured.
    stranger = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/agent/cli.ts'), '--coordinator', `ws://127.0.0.1:${server.port}/agent`, '--name', 'stranger', '--state-dir', path.join(work, 'stranger')], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HYPERGPU_DATASETS: '' },
    });
    stranger.stdout!.on('data', (chunk: Buffer) => (strangerOutput += chunk.toString('utf8')));
    stranger.stderr!.on('data', (chunk: Buffer) => (strangerOutput += chunk.toString('utf8')));
    await eventually(async () => (await get('/api/nodes')).body.nodes.length, (n) => n === 2, 120_000, 'both agents registered');
  }, 180_000);

  afterAll(async () => {
    stranger?.kill('SIGTERM');
    const code = await server?.stop('SIGTERM');
    expect(code).toBe(0);
    rmSync(work, { recursive: true, force: true });
  });

  it('lists the registered datasets by id with their sizes, never their folders', async () => {
    const listed = await get('/api/datasets');
    expect(listed.status).toBe(200);
    expect(listed.body.datasets).toEqual([
      { id: 'mnist', trainSize: 60_000, testSize: 10_000, inputShape: [28, 28, 1] },
      { id: 'digits', trainSize: 2000, testSize: 400, inputShape: [28, 28, 1] },
    ]);
    expect(listed.text).not.toContain(work);
  });

  it('refuses an unknown id, or a path, with 400 naming the registered ids and no path', async () => {
    const unknown = await post('/api/training/start', { dataset: 'imagenet' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toMatch(/unknown dataset 'imagenet'; registered: mnist, digits/);
    for (const attempt of [`folder:${dir}`, dir, '/etc/passwd', '../../etc']) {
      const refused = await post('/api/training/start', { dataset: attempt });
      expect(refused.status, attempt).toBe(400);
      expect(refused.body.error.message).toMatch(/registered dataset id/);
      expect(refused.text).not.toContain(work);
      expect(refused.text).not.toContain('/etc');
    }
    expect((await get('/api/status')).body.state).toBe('idle');
  });

  it('trains the registered folder end to end; the agent without it does not train and says why', async () => {
    const started = await post('/api/training/start', { dataset: 'digits', model: 'mlp', batchSize: 64, evalEvery: 5, targetAccuracy: 0.95, maxRounds: 400 });
    expect(started.status, started.text).toBe(201);
    expect(started.body.config.dataset).toBe('digits');
    const done = await eventually(
      async () => (await get(`/api/sessions/${started.body.id}`)).body,
      (s) => s.state !== 'running',
      240_000,
      'the digits session to end',
    );
    expect(done.state, JSON.stringify(done)).toBe('completed');
    expect(done.lastTestAccuracy).toBeGreaterThanOrEqual(0.95);

    const nodes = (await get('/api/nodes')).body.nodes as Array<{ name: string; acceptedContributions: number }>;
    expect(nodes.find((n) => n.name === 'local-1')?.acceptedContributions).toBeGreaterThan(0);
    expect(nodes.find((n) => n.name === 'stranger')?.acceptedContributions).toBe(0);
    expect(strangerOutput).toMatch(/the coordinator asked for dataset 'digits', which is not configured on this machine/);
    expect(strangerOutput).toMatch(/--dataset digits=\/path\/to\/folder/);
    expect(strangerOutput).not.toContain(dir);
    // The coordinator's own terminal may name the folder; no message to an agent or API caller did.
    expect(server.output()).toMatch(/session \d+ started: mlp on digits/);
  }, 300_000);
});
