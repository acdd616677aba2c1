// A node agent started by hand (as on another machine) rides out a coordinator crash: it reconnects with
// backoff, keeps its node id, and the restarted coordinator resumes the session from its checkpoint.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually, freePort, ROOT, startServer, tempDataDir, waitForHttp, type ServerProcess } from '../support/server-process';

const json = async (url: string) => (await (await fetch(url)).json()) as any;

describe('agent reconnect across a coordinator crash', () => {
  let first: ServerProcess | null = null;
  let second: ServerProcess | null = null;
  let agent: ChildProcess | null = null;
  let agentOutput = '';

  afterAll(async () => {
    agent?.kill('SIGTERM');
    await first?.stop();
    await second?.stop();
  });

  it('reconnects by itself, keeps its id, and training continues from the checkpoint', async () => {
    const port = await freePort();
    const dataDir = tempDataDir();
    const base = `http://127.0.0.1:${port}`;
    first = await startServer(['--no-dashboard', '--nodes', '0', '--checkpoint-every', '5', '--batch-size', '64'], { port, dataDir });
    await waitForHttp(`${base}/health`);
    agent = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/agent/cli.ts'), '--coordinator', `ws://127.0.0.1:${port}/agent`, '--name', 'roamer', '--state-dir', path.join(dataDir, 'agent-state')], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    agent.stdout!.on('data', (d: Buffer) => (agentOutput += d.toString()));
    agent.stderr!.on('data', (d: Buffer) => (agentOutput += d.toString()));

    await eventually(() => json(`${base}/api/status`), (s) => s.round >= 12, 120_000, 'twelve rounds');
    const before = (await json(`${base}/api/nodes`)).nodes.find((n: any) => n.name === 'roamer');
    expect(before).toBeDefined();
    const sessionId = (await json(`${base}/api/status`)).sessionId;

    await first.stop('SIGKILL');
    first = null;
    await eventually(async () => agentOutput, (o) => /reconnecting in \d+ ms/.test(o), 10_000, 'the agent to notice');

    second = await startServer(['--no-dashboard', '--nodes', '0', '--checkpoint-every', '5', '--batch-size', '64'], { port, dataDir });
    await second.waitForOutput(/resumed after a coordinator restart from checkpoint at round (\d+)/);
    const resumedAt = Number(second.output().match(/from checkpoint at round (\d+)/)![1]);
    expect(resumedAt).toBeGreaterThanOrEqual(10);

    const resumedRound = Number(second.output().match(/model version \d+, round (\d+)/)![1]);
    expect(resumedRound).toBeGreaterThanOrEqual(resumedAt);
    // New rounds need the agent: it must have come back by itself.
    const status = await eventually(() => json(`${base}/api/status`), (s) => s.round >= resumedRound + 5 && s.sessionId === sessionId, 120_000, 'rounds after the restart');
    expect(status.state).toBe('running');
    const after = (await json(`${base}/api/nodes`)).nodes.find((n: any) => n.name === 'roamer');
    expect(after.id).toBe(before.id);
    expect(['idle', 'training']).toContain(after.status);
    expect(agentOutput).toMatch(new RegExp(`registered as node #${before.id}[\\s\\S]*registered as node #${before.id}`));
  });
});
