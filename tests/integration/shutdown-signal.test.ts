// Ctrl-C in a terminal: the terminal sends SIGINT to the whole foreground process group (npm, the server and
// its local agents), and npm relays it to its child once more, so the server sees it twice. That must be one
// request to stop: the server writes a final checkpoint, leaves the session resumable and exits 0.
import { spawn } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually, freePort, ROOT, startServer, tempDataDir, waitForHttp } from '../support/server-process';

const json = async (url: string) => (await (await fetch(url)).json()) as any;

describe('Ctrl-C from a terminal', () => {
  let pgid = 0;

  afterAll(() => {
    try {
      if (pgid) process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  });

  it('SIGINT to the process group of `npm start` stops cleanly with a final checkpoint, the session resumable', async () => {
    const port = await freePort();
    const dataDir = tempDataDir('hypergpu-sigint-');
    const child = spawn('npm', ['start', '--', '--nodes', '1', '--no-dashboard', '--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir, '--checkpoint-every', '1000'], {
      cwd: ROOT,
      // Its own process group, as a terminal's foreground job is.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
    });
    pgid = child.pid!;
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

    const base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/health`);
    const running = await eventually(() => json(`${base}/api/status`), (s) => s.state === 'running' && s.round >= 3, 120_000, 'training to run');
    const sessionId = running.sessionId as number;

    process.kill(-pgid, 'SIGINT');
    const { code, signal } = await exited;
    pgid = 0;
    expect({ code, signal }, output.slice(-3000)).toEqual({ code: 0, signal: null });
    expect(output).toMatch(/SIGINT: stopping agents, writing a final checkpoint/);
    expect(output).toMatch(/HyperGPU stopped cleanly/);
    // npm's relayed copy, when it arrives apart from the terminal's (they may merge), is the same request.
    expect(output).not.toMatch(/exiting now, without waiting/);

    const db = new Database(path.join(dataDir, 'hypergpu.db'), { readonly: true });
    try {
      const session = db.prepare('SELECT state, message, round FROM TrainingSession WHERE id = ?').get(sessionId) as { state: string; message: string; round: number };
      expect(['running', 'paused']).toContain(session.state);
      expect(session.message).toMatch(/coordinator shut down at round \d+; it resumes on the next start/);
      const checkpoint = db.prepare('SELECT max(round) AS round FROM Checkpoint WHERE sessionId = ?').get(sessionId) as { round: number | null };
      // checkpointEvery is 1000: this is the shutdown checkpoint, at the last committed round.
      expect(checkpoint.round).toBe(session.round);
      expect(session.round).toBeGreaterThanOrEqual(3);
    } finally {
      db.close();
    }
  }, 240_000);

  it('a second SIGINT moments later is the same request (the policy itself: tests/unit/signal-policy.test.ts)', async () => {
    const server = await startServer(['--nodes', '1', '--no-dashboard', '--checkpoint-every', '1000']);
    try {
      await waitForHttp(`${server.baseUrl}/health`);
      await eventually(() => json(`${server.baseUrl}/api/status`), (s) => s.state === 'running' && s.round >= 2, 120_000, 'training to run');
      server.child.kill('SIGINT');
      await server.waitForOutput(/SIGINT: stopping agents/);
      server.child.kill('SIGINT');
      await server.waitForOutput(/SIGINT: already shutting down/);
      expect(await server.exited).toBe(0);
      expect(server.output()).toMatch(/HyperGPU stopped cleanly/);
      expect(server.output()).toMatch(/checkpoint at round \d+/);
    } finally {
      await server.stop('SIGKILL');
    }
  }, 240_000);
});
