// The engine's norm screen across rounds, end to end: a real agent sending updates 30x as long as its honest ones
// (--byzantine-mode blow-up) among three honest agents. Each of its updates is over 10x the median of recent norms,
// so the coordinator accepts it counted as 10x the median instead of refusing it: the log says so once (naming the
// node), the agent is told in its `accepted` message and counts the clips in its progress line, its samples are
// credited in the ledger with the factor it counted at, and no honest update is refused for its norm. (An honest
// update may be clipped now and then: late in training a batch with a hard sample has a far longer gradient than
// the fitted ones around it. That is why the screen clips before it refuses.) Real server, real agent processes over
// WebSockets, the SQLite ledger.
import { rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { writeDigits } from '../support/audit-fixtures';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text';
import { eventually, OPERATOR_HEADERS, startServer, tempDataDir, waitForHttp } from '../support/server-process';

describe('norm screen with real agents', () => {
  it('clips a blown-up sender instead of refusing it, tells it so, credits it, and refuses no honest update', async () => {
    const work = tempDataDir('hypergpu-norm-screen-it-');
    const dir = path.join(work, 'digits');
    writeDigits(dir, 640, 200);
    const server = await startServer(['--no-dashboard', '--no-session', '--nodes', '3', '--byzantine', '1', '--byzantine-mode', 'blow-up', '--dataset', `digits=${dir}`], {
      dataDir: path.join(work, 'data'),
    });
    try {
      await waitForHttp(`${server.baseUrl}/health`);
      const nodes = await eventually(
        async () => ((await (await fetch(`${server.baseUrl}/api/nodes`)).json()) as { nodes: { id: number; name: string }[] }).nodes,
        (n) => n.length === 4,
        120_000,
        'four agents registered',
      );
      const byzantineId = nodes.find((n) => n.name === 'byzantine-1')!.id;
      const started = await fetch(`${server.baseUrl}/api/training/start`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...OPERATOR_HEADERS },
        body: JSON.stringify({ dataset: 'digits', batchSize: 32, maxRounds: 60, evalEvery: 10, optimizer: 'sgd', learningRate: 0.05, aggregation: { rule: 'mean' } }),
      });
      expect(started.status, await started.clone().text()).toBeLessThan(300);
      const { id: sessionId } = (await started.json()) as { id: number };

      // The first clip of the session, logged with the node and both limits.
      const [, clippedNode] = await server.waitForOutput(/the update of node #(\d+) \(norm \S+\) counts clipped to \S+ \(10x the median \S+ of recently accepted updates\); its samples are credited/, 120_000);
      expect(Number(clippedNode)).toBe(byzantineId);
      // The agent was told in each `accepted` message; its progress line (every 10 s) counts them.
      await server.waitForOutput(/\[agent byzantine-1\] .*, \d+ accepted clipped to the coordinator's norm limit/, 60_000);
      await server.waitForOutput(/session \d+ completing: reached 60 rounds/, 240_000);

      const db = new Database(path.join(server.dataDir, 'hypergpu.db'), { readonly: true });
      try {
        const credited = db.prepare('SELECT n.name, COUNT(*) AS n FROM Contribution c JOIN Node n ON n.id = c.nodeId WHERE c.sessionId = ? GROUP BY n.name').all(sessionId) as { name: string; n: number }[];
        const creditedOf = (name: string) => credited.find((c) => c.name === name)?.n ?? 0;
        // Clipped, not refused: most of its updates are in the ledger (a few early ones may be refused while the
        // window holds under 32 norms and its own honest norm is well above the median; their retries get in).
        expect(creditedOf('byzantine-1')).toBeGreaterThan(40);
        for (const name of ['local-1', 'local-2', 'local-3']) expect(creditedOf(name), name).toBeGreaterThan(40);
        const refused = db
          .prepare("SELECT n.name, r.reason, r.count FROM RejectedUpdate r JOIN Node n ON n.id = r.nodeId WHERE r.sessionId = ? AND r.reason LIKE 'ABSURD_NORM%'")
          .all(sessionId) as { name: string; reason: string; count: number }[];
        expect(refused.filter((r) => r.name !== 'byzantine-1')).toEqual([]);
        // The ledger keeps the factor each update counted at when it was scaled down. For the sender 30x the honest
        // length that is the smaller of the screen's 10x the recent median and the session's clipFactor (3, the
        // default) x the round's median: about 3/30. Honest updates are scaled only when over 3x their round's
        // median, which is rare.
        const scaled = db
          .prepare('SELECT n.name, c.scale FROM Contribution c JOIN Node n ON n.id = c.nodeId WHERE c.sessionId = ? AND c.scale IS NOT NULL')
          .all(sessionId) as { name: string; scale: number }[];
        for (const { scale } of scaled) expect(scale >= 0 && scale < 1, `scale ${scale}`).toBe(true);
        const byzantine = scaled.filter((r) => r.name === 'byzantine-1').map((r) => r.scale).sort((a, b) => a - b);
        expect(byzantine.length).toBeGreaterThan(30);
        expect(byzantine[Math.floor(byzantine.length / 2)]).toBeGreaterThan(0.05);
        expect(byzantine[Math.floor(byzantine.length / 2)]).toBeLessThan(0.2);
        const honestRows = ['local-1', 'local-2', 'local-3'].reduce((sum, name) => sum + creditedOf(name), 0);
        console.log(`norm screen: ${byzantine.length} of byzantine-1's rows scaled (median ${byzantine[Math.floor(byzantine.length / 2)].toFixed(3)}), ${scaled.length - byzantine.length} of ${honestRows} honest rows`);
        expect(scaled.length - byzantine.length).toBeLessThan(honestRows / 5);
        // /metrics counts them from the same rows.
        const metrics = parsePrometheusText(await (await fetch(`${server.baseUrl}/metrics`)).text());
        expect(sampleValue(metrics, 'hypergpu_session_updates_clipped')).toBe(scaled.length);
      } finally {
        db.close();
      }
    } finally {
      await server.stop('SIGTERM');
      rmSync(work, { recursive: true, force: true });
    }
  }, 420_000);
});
