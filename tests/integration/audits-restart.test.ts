// Audits across a real crash: the coordinator is killed (kill -9) right after an epoch closed, while that epoch's
// audits wait for the auditor to start. The updates chosen for them lived in memory only, so after the restart
// the epoch is audited once, with those audits recorded as not done: never passed, never a forfeit. Later epochs
// are audited normally. Simulated agents (their fixed payload is not a real gradient, so every real audit of
// theirs fails) and HYPERGPU_AUDIT_RATE=0 (only the once-per-epoch audits, which run at the epoch's end).
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
  let server: ServerProcess | null = null;
  const agents: SimAgent[] = [];

  afterAll(async () => {
    for (const a of agents) a.close();
    await server?.stop('SIGKILL');
  });

  it('audits the interrupted epoch once after the restart, as not done, and forfeits nothing for it', async () => {
    writeDigits(dir, 640, 100);
    server = await startServer([...args, '--no-session'], { dataDir, env });
    const port = server.port;
    await waitForHttp(`${server.baseUrl}/health`);
    for (const name of ['sim-a', 'sim-b']) {
      const agent = new SimAgent(`ws://127.0.0.1:${port}/agent`, name, 200);
      agents.push(agent);
      await agent.connect();
    }
    const started = await fetch(`${server.baseUrl}/api/training/start`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...OPERATOR_HEADERS },
      body: JSON.stringify({ dataset: 'digits', batchSize: 32, checkpointEvery: 5, evalEvery: 100 }),
    });
    expect(started.status, await started.clone().text()).toBe(201);
    await server.waitForOutput(/epoch 0 closed at round \d+/, 120_000);
    await server.stop('SIGKILL');
    const before = server.output();
    server = null;
    for (const a of agents.splice(0)) a.close();

    const dbBefore = new Database(path.join(dataDir, 'hypergpu.db'), { readonly: true });
    const auditedBefore = dbBefore.prepare('SELECT epoch FROM EpochAudit').all() as { epoch: number }[];
    dbBefore.close();
    // The auditor takes seconds to start (tfjs, the training set); the kill comes within milliseconds.
    expect(auditedBefore, before.slice(-2000)).toEqual([]);
    expect(before).not.toMatch(/epoch 0 audited/);

    server = await startServer(args, { port, dataDir, env });
    await server.waitForOutput(/resumed after a coordinator restart/, 120_000);
    await waitForHttp(`${server.baseUrl}/health`);
    for (const name of ['sim-c', 'sim-d']) {
      const agent = new SimAgent(`ws://127.0.0.1:${port}/agent`, name, 200);
      agents.push(agent);
      await agent.connect();
    }
    await server.waitForOutput(/epoch 1 audited/, 180_000);
    const after = server.output();
    expect(after.match(/epoch 0 audited/g)).toHaveLength(1);

    const db = new Database(path.join(dataDir, 'hypergpu.db'), { readonly: true });
    try {
      const epochs = db.prepare('SELECT epoch FROM EpochAudit ORDER BY epoch').all() as { epoch: number }[];
      expect(epochs.slice(0, 2)).toEqual([{ epoch: 0 }, { epoch: 1 }]);
      const rows = db.prepare('SELECT a.epoch, n.name, a.outcome, a.detail FROM Audit a JOIN Node n ON n.id = a.nodeId ORDER BY a.epoch, n.name').all() as {
        epoch: number;
        name: string;
        outcome: string;
        detail: string | null;
      }[];
      expect(rows.filter((r) => r.outcome === 'pending')).toEqual([]);
      // Epoch 0: both nodes that delivered have an audit row, and it says not done.
      const epoch0 = rows.filter((r) => r.epoch === 0);
      expect(epoch0.map((r) => r.name)).toEqual(['sim-a', 'sim-b']);
      for (const r of epoch0) {
        expect(r.outcome).toBe('error');
        expect(r.detail).toMatch(/^not done: /);
      }
      const forfeits = db.prepare('SELECT f.epoch, n.name FROM EpochForfeit f JOIN Node n ON n.id = f.nodeId ORDER BY f.epoch, n.name').all() as { epoch: number; name: string }[];
      expect(forfeits.filter((f) => f.epoch === 0)).toEqual([]);
      // Epoch 1, after the restart: audited for real; the simulated agents' fixed payloads fail and forfeit.
      const epoch1 = rows.filter((r) => r.epoch === 1 && (r.name === 'sim-c' || r.name === 'sim-d'));
      expect(epoch1.length).toBeGreaterThan(0);
      for (const r of epoch1) expect(r.outcome).toBe('fail');
      expect(forfeits.filter((f) => f.epoch === 1).map((f) => f.name)).toEqual(epoch1.map((r) => r.name));
    } finally {
      db.close();
    }
  }, 420_000);
});
