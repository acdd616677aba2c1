// The default aggregation path of a closed pool, end to end: the sample-weighted mean with every update folded into
// the round's running sum as it arrives (no per-update slot). What used to need the updates kept until the close
// must still hold: every contribution gets an outlier score (estimated from the fold's sketch of each update), a
// node sending scaled updates stands out, and the audits recompute updates captured from the received payloads:
// honest nodes pass, the Byzantine one fails. Real server, real agent processes, the SQLite ledger.
import { rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { writeDigits } from '../support/audit-fixtures';
import { eventually, OPERATOR_HEADERS, startServer, tempDataDir, waitForHttp } from '../support/server-process';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

describe('fold on arrival with real agents', () => {
  it('scores every contribution, singles out a scaled sender, and audits from the received payloads', async () => {
    const work = tempDataDir('hypergpu-fold-it-');
    const dir = path.join(work, 'digits');
    // 640 samples, 32 per node per round: with four nodes an epoch closes (and is audited) every 5 rounds.
    writeDigits(dir, 640, 200);
    const server = await startServer(
      ['--no-dashboard', '--no-session', '--nodes', '3', '--byzantine', '1', '--byzantine-mode', 'scale', '--dataset', `digits=${dir}`],
      // Audit every accepted update, so the captures of many rounds are checked, not one per node and epoch.
      { dataDir: path.join(work, 'data'), env: { HYPERGPU_AUDIT_RATE: '1' } },
    );
    try {
      await waitForHttp(`${server.baseUrl}/health`);
      await eventually(
        async () => ((await (await fetch(`${server.baseUrl}/api/nodes`)).json()) as { nodes: unknown[] }).nodes.length,
        (n) => n === 4,
        120_000,
        'four agents registered',
      );
      const started = await fetch(`${server.baseUrl}/api/training/start`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...OPERATOR_HEADERS },
        body: JSON.stringify({ dataset: 'digits', batchSize: 32, maxRounds: 30, evalEvery: 10, optimizer: 'sgd', learningRate: 0.05, aggregation: { rule: 'mean' } }),
      });
      expect(started.status, await started.clone().text()).toBeLessThan(300);
      const { id: sessionId } = (await started.json()) as { id: number };
      await server.waitForOutput(/aggregation: sample-weighted mean, clipped at 3x the median norm, each update folded in as it arrives/, 60_000);
      // Five epochs close by round 25 (of 30); wait until the fifth one's audits are resolved.
      await server.waitForOutput(/epoch 4 audited/, 300_000);

      const db = new Database(path.join(server.dataDir, 'hypergpu.db'), { readonly: true });
      try {
        const contributions = db
          .prepare('SELECT n.name, c.round, c.outlierScore FROM Contribution c JOIN Node n ON n.id = c.nodeId WHERE c.sessionId = ?')
          .all(sessionId) as { name: string; round: number; outlierScore: number | null }[];
        // Every accepted update of a round with two or more has its score (a lone update has nothing to differ from).
        const perRound = new Map<number, number>();
        for (const c of contributions) perRound.set(c.round, (perRound.get(c.round) ?? 0) + 1);
        const scorable = contributions.filter((c) => (perRound.get(c.round) ?? 0) >= 2);
        expect(scorable.length).toBeGreaterThan(20);
        expect(scorable.filter((c) => c.outlierScore === null)).toEqual([]);
        const scoreOf = (name: string) => median(scorable.filter((r) => r.name === name).map((r) => r.outlierScore!));
        const honest = ['local-1', 'local-2', 'local-3'].map(scoreOf);
        // 4x the gradient among three honest ones, clipped to 3x the median norm: about 3x the honest distance.
        expect(scoreOf('byzantine-1')).toBeGreaterThan(1.5 * Math.max(...honest));

        const audits = db
          .prepare('SELECT n.name, a.outcome, a.relativeError FROM Audit a JOIN Node n ON n.id = a.nodeId WHERE a.sessionId = ?')
          .all(sessionId) as { name: string; outcome: string; relativeError: number | null }[];
        for (const name of ['local-1', 'local-2', 'local-3']) {
          const mine = audits.filter((a) => a.name === name);
          // Recomputed from the payload the fold referenced: the honest node's own update.
          expect(mine.filter((a) => a.outcome === 'fail'), `${name}: ${JSON.stringify(mine)}`).toEqual([]);
          expect(mine.filter((a) => a.outcome === 'pass').length, `${name} passed audits`).toBeGreaterThan(3);
        }
        expect(audits.filter((a) => a.name === 'byzantine-1' && a.outcome === 'fail').length).toBeGreaterThan(3);
      } finally {
        db.close();
      }
    } finally {
      await server.stop('SIGTERM');
      rmSync(work, { recursive: true, force: true });
    }
  }, 420_000);
});
