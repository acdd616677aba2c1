// Audits across a real crash. The updates chosen for an epoch's audits live in the coordinator's memory only,
// so a kill -9 in the middle of an epoch loses them. After the restart that epoch is still audited exactly
// once: the nodes whose chosen updates were lost get an audit recorded as not done (never passed, never a
// forfeit), the nodes that delivered after the restart are audited for real. Simulated agents only: their fixed
// payload is not a real gradient, so each real audit of theirs fails. HYPERGPU_AUDIT_RATE=0 keeps to the
// once-per-node-per-epoch audits, which all run when the epoch closes. (An audit cut off after its epoch closed,
// and the epoch-closed event delivered again at start: tests/unit/audit-service.test.ts.)
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../bench/lib/sim-agent';
import { writeDigits } from '../support/audit-fixtures';
import { OPERATOR_HEADERS, startServer, tempDataDir, waitForHttp, type ServerProcess } from '../support/server-process';

describe('audits across a coordinator kill -9', () => {
  const work = tempDataDir('hypergpu-audits-restart-');
  const dir = path.join(work, 'digits');
  const dataDir = path.join(work, 'data');
  const env = { HYPERGPU_AUDIT_RATE: '0' };
  const args = ['--no-dashboard', '--nodes', '0', '--dataset', `digits=${dir}`];
  // 3,200 samples, 32 per node per round, two nodes: an epoch is 50 rounds.
  const ROUNDS_PER_EPOCH = 50;
  let server: ServerProcess | null = null;
  const agents: SimAgent[] = [];

  afterAll(async () => {
    for (const a of agents) a.close();
    await server?.stop('SIGKILL');
  });

  async function join(port: number, names: string[]): Promise<void> {
    for (const name of names) {
      const agent = new SimAgent(`ws://127.0.0.1:${port}/agent`, name, 200);
      agents.push(agent);
      await agent.connect();
    }
  }

  it('audits the interrupted epoch once: lost audits recorded as not done, later deliveries audited for real', async () => {
    writeDigits(dir, 3200, 100);
    server = await startServer([...args, '--no-session'], { dataDir, env });
    const { port, baseUrl } = server;
    await waitForHttp(`${baseUrl}/health`);
    await join(port, ['sim-a', 'sim-b']);
    const started = await fetch(`${baseUrl}/api/training/start`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...OPERATOR_HEADERS },
      body: JSON.stringify({ dataset: 'digits', batchSize: 32, checkpointEvery: 5, evalEvery: 100 }),
    });
    expect(started.status, await started.clone().text()).toBe(201);
    // Killed a few rounds into epoch 0: its audit candidates are held in memory only.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const status = (await (await fetch(`${baseUrl}/api/status`)).json()) as { round: number };
      if (status.round >= 3) break;
      if (Date.now() > deadline) throw new Error(`no round 3 within 120 s: ${JSON.stringify(status)}\n${server.output().slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await server.stop('SIGKILL');
    const before = server.output();
    server = null;
    for (const a of agents.splice(0)) a.close();
    const dbBefore = new Database(path.join(dataDir, 'hypergpu.db'), { readonly: true });
    const lastRound = dbBefore.prepare('SELECT MAX(round) AS r FROM Round').pluck().get() as number;
    const auditRows = dbBefore.prepare('SELECT COUNT(*) FROM Audit').pluck().get() as number;
    dbBefore.close();
    expect(lastRound, before.slice(-3000)).toBeLessThan(ROUNDS_PER_EPOCH);
    expect(auditRows).toBe(0);

    // Other agents finish the epoch after the restart (sim-a and sim-b are gone with their connections).
    server = await startServer(args, { port, dataDir, env });
    await server.waitForOutput(/resumed after a coordinator restart/, 120_000);
    await waitForHttp(`${baseUrl}/health`);
    await join(port, ['sim-c', 'sim-d']);
    await server.waitForOutput(/epoch 0 audited/, 180_000);
    const after = server.output();
    expect(after.match(/epoch 0 audited/g), after.slice(-3000)).toHaveLength(1);

    const db = new Database(path.join(dataDir, 'hypergpu.db'), { readonly: true });
    try {
      expect(db.prepare('SELECT epoch FROM EpochAudit WHERE epoch = 0').all()).toEqual([{ epoch: 0 }]);
      const rows = db.prepare('SELECT n.name, a.outcome, a.selectedBy, a.detail FROM Audit a JOIN Node n ON n.id = a.nodeId WHERE a.epoch = 0 ORDER BY n.name').all() as {
        name: string;
        outcome: string;
        selectedBy: string;
        detail: string | null;
      }[];
      expect(rows.map((r) => r.name), JSON.stringify(rows)).toEqual(['sim-a', 'sim-b', 'sim-c', 'sim-d']);
      for (const r of rows.slice(0, 2)) expect(r).toMatchObject({ outcome: 'error', selectedBy: 'unrecoverable', detail: expect.stringMatching(/^not done: /) });
      for (const r of rows.slice(2)) expect(r).toMatchObject({ outcome: 'fail', selectedBy: 'reservoir' });
      const forfeits = db.prepare('SELECT n.name FROM EpochForfeit f JOIN Node n ON n.id = f.nodeId WHERE f.epoch = 0 ORDER BY n.name').pluck().all();
      expect(forfeits).toEqual(['sim-c', 'sim-d']);
    } finally {
      db.close();
    }
  }, 420_000);
});
