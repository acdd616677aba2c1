// Audits from scratch files, for real: the server process with no memory for audit captures
// (HYPERGPU_AUDIT_MEMORY_MB=0), so every chosen update and the model it was computed on go to <data>/audit-spill and
// are read back when their audit runs; every accepted update is chosen (HYPERGPU_AUDIT_RATE=1). One real agent trains
// honestly, a simulated one sends fabricated updates. Spilling must not weaken anything: the honest node passes every
// audit, the fabricator fails every one and forfeits the epoch, no audit is "not done", and no file is left behind.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../bench/lib/sim-agent';
import { fabricatedPayload, writeDigits } from '../support/audit-fixtures';
import { eventually, OPERATOR_HEADERS, startServer, tempDataDir, waitForHttp, type ServerProcess } from '../support/server-process';

describe('audits of captures spilled to scratch files', () => {
  const work = tempDataDir('hypergpu-audits-spill-it-');
  const dataDir = path.join(work, 'data');
  const spillDir = path.join(dataDir, 'audit-spill');
  let server: ServerProcess;
  let fabricator: SimAgent;
  let db: Database.Database;
  let mostFiles = 0;
  let leftoverSwept = false;

  beforeAll(async () => {
    const dir = path.join(work, 'digits');
    // 640 samples, 32 per node per round: with two nodes epoch 0 closes at round 10.
    writeDigits(dir, 640, 100);
    // What a killed coordinator would leave behind: swept at start, never read.
    mkdirSync(spillDir, { recursive: true });
    writeFileSync(path.join(spillDir, '999.f32'), Buffer.alloc(1024));
    server = await startServer(['--no-dashboard', '--no-session', '--nodes', '1', '--dataset', `digits=${dir}`], {
      dataDir,
      env: { HYPERGPU_AUDIT_MEMORY_MB: '0', HYPERGPU_AUDIT_RATE: '1' },
    });
    await waitForHttp(`${server.baseUrl}/health`);
    leftoverSwept = !existsSync(path.join(spillDir, '999.f32'));
    await eventually(async () => ((await (await fetch(`${server.baseUrl}/api/nodes`)).json()) as { nodes: unknown[] }).nodes.length, (n) => n === 1, 120_000, 'the local agent registered');
    fabricator = new SimAgent(`ws://127.0.0.1:${server.port}/agent`, 'fabricator', 200, undefined, fabricatedPayload(1));
    await fabricator.connect();
    const watch = setInterval(() => {
      try {
        mostFiles = Math.max(mostFiles, readdirSync(spillDir).length);
      } catch {
        // not created yet
      }
    }, 25);
    try {
      const started = await fetch(`${server.baseUrl}/api/training/start`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...OPERATOR_HEADERS },
        body: JSON.stringify({ dataset: 'digits', batchSize: 32, maxRounds: 12, evalEvery: 100, optimizer: 'sgd', learningRate: 0.05 }),
      });
      expect(started.status, await started.clone().text()).toBeLessThan(300);
      await server.waitForOutput(/epoch 0 audited/, 300_000);
      db = new Database(path.join(server.dataDir, 'hypergpu.db'), { readonly: true });
      // The session ends at round 12; the audits of rounds 11-12 run after it.
      await eventually(
        async () => (db.prepare("SELECT COUNT(*) AS n FROM Audit WHERE round > 10 AND outcome = 'pending'").get() as { n: number }).n + (db.prepare('SELECT MAX(round) AS r FROM Audit').get() as { r: number }).r,
        (v) => v === 12,
        120_000,
        'the audits of the last rounds resolved',
      );
      await eventually(async () => readdirSync(spillDir).length, (n) => n === 0, 30_000, 'the scratch files removed');
    } finally {
      clearInterval(watch);
    }
  }, 420_000);

  afterAll(async () => {
    fabricator?.close();
    db?.close();
    await server?.stop('SIGTERM');
  });

  const auditsOf = (name: string) =>
    db.prepare('SELECT a.epoch, a.round, a.outcome, a.selectedBy, a.relativeError, a.tolerance, a.detail FROM Audit a JOIN Node n ON n.id = a.nodeId WHERE n.name = ? ORDER BY a.round').all(name) as {
      epoch: number;
      round: number;
      outcome: string;
      selectedBy: string;
      relativeError: number | null;
      tolerance: number;
      detail: string | null;
    }[];

  it('went through files: the leftover of a previous process swept at start, captures written while they waited, none left', () => {
    expect(leftoverSwept).toBe(true);
    expect(mostFiles).toBeGreaterThan(0);
    expect(readdirSync(spillDir)).toEqual([]);
  });

  it('audited every accepted update of both nodes, none left not done', () => {
    for (const name of ['local-1', 'fabricator']) {
      const contributed = (db.prepare('SELECT COUNT(*) AS n FROM Contribution c JOIN Node n ON n.id = c.nodeId JOIN Round r ON r.sessionId = c.sessionId AND r.round = c.round WHERE n.name = ? AND r.applied = 1').get(name) as { n: number }).n;
      const audits = auditsOf(name);
      expect(contributed, name).toBeGreaterThan(2);
      expect(audits.length, name).toBe(contributed);
      expect(audits.filter((a) => a.outcome === 'error' || a.outcome === 'pending'), name).toEqual([]);
    }
  });

  it('the honest node passes within the tolerance; the fabricator fails every audit and forfeits epoch 0', () => {
    for (const a of auditsOf('local-1')) expect(a.relativeError!, JSON.stringify(a)).toBeLessThan(a.tolerance);
    const fabricated = auditsOf('fabricator');
    for (const a of fabricated) {
      expect(a.outcome, JSON.stringify(a)).toBe('fail');
      expect(a.relativeError!).toBeGreaterThan(0.5);
    }
    const forfeits = db.prepare('SELECT f.epoch FROM EpochForfeit f JOIN Node n ON n.id = f.nodeId ORDER BY f.epoch').all() as { epoch: number }[];
    expect(forfeits).toEqual([{ epoch: 0 }]);
    expect(server.output()).toMatch(/epoch 0 audited: \d+ passed, \d+ failed, 0 not done; 1 node\(s\) forfeit the epoch \(captures waiting: [\d.]+ MB in memory, [\d.]+ MB in scratch files\)/);
  });
});
