// Verified work, for real: the server process, one real agent training honestly on a small dataset (so epochs
// close within a few rounds) and a simulated agent over the real protocol that sends fabricated updates (a
// plausible norm, a wrong direction). The auditor recomputes chosen updates; the honest node passes and keeps
// its credit, the fabricator is caught in every epoch it delivered in (every node is audited once per epoch),
// forfeits it, and its audit rows and timeline say why.
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../bench/lib/sim-agent';
import { fabricatedPayload, writeDigits } from '../support/audit-fixtures';
import { eventually, OPERATOR_HEADERS, startServer, tempDataDir, waitForHttp, type ServerProcess } from '../support/server-process';

describe('audits of accepted updates', () => {
  const work = tempDataDir('hypergpu-audits-it-');
  let server: ServerProcess;
  let fabricator: SimAgent;
  let db: Database.Database;
  const get = async (p: string) => {
    const res = await fetch(`${server.baseUrl}${p}`);
    return { status: res.status, body: (await res.json()) as any };
  };

  beforeAll(async () => {
    const dir = path.join(work, 'digits');
    // 640 samples, 32 per node per round: with two nodes an epoch closes every 10 rounds.
    writeDigits(dir, 640, 100);
    server = await startServer(['--no-dashboard', '--no-session', '--nodes', '1', '--dataset', `digits=${dir}`], { dataDir: path.join(work, 'data') });
    await waitForHttp(`${server.baseUrl}/health`);
    await eventually(async () => (await get('/api/nodes')).body.nodes.length, (n) => n === 1, 120_000, 'the local agent registered');
    fabricator = new SimAgent(`ws://127.0.0.1:${server.port}/agent`, 'fabricator', 200, undefined, fabricatedPayload(1));
    await fabricator.connect();
    const started = await fetch(`${server.baseUrl}/api/training/start`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...OPERATOR_HEADERS },
      body: JSON.stringify({ dataset: 'digits', batchSize: 32, maxRounds: 32, evalEvery: 10, optimizer: 'sgd', learningRate: 0.05 }),
    });
    expect(started.status, await started.clone().text()).toBeLessThan(300);
    // Three epochs close by round 30 (of 32); the last one's audits resolve right after.
    await server.waitForOutput(/epoch 2 audited/, 300_000);
    db = new Database(path.join(server.dataDir, 'hypergpu.db'), { readonly: true });
  }, 420_000);

  afterAll(async () => {
    fabricator?.close();
    db?.close();
    await server?.stop('SIGTERM');
  });

  const nodeId = (name: string) => (db.prepare('SELECT id FROM Node WHERE name = ?').get(name) as { id: number }).id;
  const auditsOf = (id: number) =>
    db.prepare('SELECT epoch, round, outcome, selectedBy, relativeError, tolerance, detail FROM Audit WHERE nodeId = ? ORDER BY round').all(id) as {
      epoch: number;
      round: number;
      outcome: string;
      selectedBy: string;
      relativeError: number | null;
      tolerance: number;
      detail: string | null;
    }[];

  it('audits every node at least once in every epoch it delivered in', () => {
    for (const name of ['local-1', 'fabricator']) {
      const id = nodeId(name);
      const epochs = (db.prepare('SELECT DISTINCT epoch FROM Contribution WHERE nodeId = ? AND epoch <= 2').all(id) as { epoch: number }[]).map((r) => r.epoch);
      expect(epochs.length, name).toBeGreaterThan(0);
      const audited = new Set(auditsOf(id).map((a) => a.epoch));
      for (const epoch of epochs) expect(audited.has(epoch), `${name} epoch ${epoch}`).toBe(true);
    }
  });

  it('the honest agent passes within the measured tolerance and keeps its credit', () => {
    const id = nodeId('local-1');
    const audits = auditsOf(id);
    expect(audits.filter((a) => a.epoch <= 2).length).toBeGreaterThan(0);
    for (const a of audits) {
      // Training stops at round 32, mid-epoch 3: an audit chosen in that epoch may still be pending when the rows
      // are read (its recomputation runs after the commit; a fast run commits round 31 before epoch 2 is audited).
      if (a.epoch > 2 && a.outcome === 'pending') continue;
      expect(a.outcome, JSON.stringify(a)).toBe('pass');
      expect(a.relativeError!).toBeLessThan(a.tolerance);
    }
    expect(db.prepare('SELECT COUNT(*) AS n FROM EpochForfeit WHERE nodeId = ?').get(id)).toEqual({ n: 0 });
  });

  it('the fabricator is caught, forfeits each epoch it delivered in, and the rows say why', () => {
    const id = nodeId('fabricator');
    const failed = auditsOf(id).filter((a) => a.outcome === 'fail');
    expect(failed.length).toBeGreaterThan(0);
    for (const a of failed) {
      expect(a.relativeError!).toBeGreaterThan(0.5);
      expect(a.detail).toMatch(/recomputed update differs: relative error .* > tolerance/);
    }
    // One snapshot: the session is still running, and a later epoch's audits may resolve between two reads.
    const { forfeits, marks } = db.transaction(() => ({
      forfeits: db.prepare('SELECT epoch, reason FROM EpochForfeit WHERE nodeId = ? ORDER BY epoch').all(id) as { epoch: number; reason: string }[],
      marks: db.prepare('SELECT epoch, forfeited FROM EpochAudit ORDER BY epoch').all() as { epoch: number; forfeited: number }[],
    }))();
    const failedIn = [...new Set(failed.map((a) => a.epoch))].sort((a, b) => a - b);
    // A failure forfeits its epoch once all of that epoch's audits are resolved (the EpochAudit mark, written in
    // the same transaction as the forfeits). An epoch still open when the rows are read (the last one: training
    // stops at round 32, mid-epoch 3) may hold a failure and no forfeit yet.
    const audited = new Set(marks.map((m) => m.epoch));
    expect(forfeits.map((f) => f.epoch)).toEqual(failedIn.filter((epoch) => audited.has(epoch)));
    expect(failedIn.filter((epoch) => epoch <= 2)).toEqual([0, 1, 2]);
    for (const f of forfeits) expect(f.reason).toMatch(/^AUDIT_FAILED: epoch \d+ credit forfeited/);
    // The epoch-audited marker for every closed epoch, counted once.
    expect(marks.slice(0, 3).map((m) => m.epoch)).toEqual([0, 1, 2]);
    expect(server.output()).toMatch(/fabricator \(#\d+\): AUDIT_FAILED: epoch \d+ credit forfeited/);
  });

  it('the timeline endpoint shows the audits, the forfeit and the credit per epoch', async () => {
    const fab = await get('/api/nodes/fabricator/timeline');
    expect(fab.status).toBe(200);
    const forfeitedEpoch = fab.body.epochs.find((e: any) => e.forfeited);
    expect(forfeitedEpoch).toBeTruthy();
    expect(forfeitedEpoch.creditedSamples).toBe(0);
    expect(forfeitedEpoch.audits.fail).toBeGreaterThan(0);
    expect(forfeitedEpoch.forfeitReason).toMatch(/AUDIT_FAILED/);
    expect(forfeitedEpoch.settled).toBeNull();
    // A failed audit forfeits once its epoch's audits are all resolved (a later epoch may still be open).
    const auditedRound = fab.body.rounds.find((r: any) => r.audit?.outcome === 'fail' && r.epoch === forfeitedEpoch.epoch);
    expect(auditedRound).toMatchObject({ status: 'accepted', forfeited: true, creditedSamples: 0 });
    expect(fab.body.events.some((e: any) => e.kind === 'node-audit-failed')).toBe(true);

    const honest = await get(`/api/nodes/${nodeId('local-1')}/timeline`);
    expect(honest.status).toBe(200);
    expect(honest.body.node.name).toBe('local-1');
    expect(honest.body.totals.creditedSamples).toBeGreaterThan(0);
    expect(honest.body.totals.forfeitedSamples).toBe(0);
    expect(honest.body.epochs.every((e: any) => !e.forfeited && e.audits.fail === 0)).toBe(true);

    expect((await get('/api/nodes/nobody-here/timeline')).status).toBe(404);
    expect((await get('/api/nodes/99999/timeline')).status).toBe(404);
  });

  it('the node table flags the fabricator', async () => {
    const nodes = (await get('/api/nodes')).body.nodes as any[];
    const fab = nodes.find((n) => n.name === 'fabricator');
    expect(fab.forfeitedEpochs.length).toBeGreaterThan(0);
    expect(nodes.find((n) => n.name === 'local-1').forfeitedEpochs).toEqual([]);
  });
});
