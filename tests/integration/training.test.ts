// The whole system for real: the server process, 3 agent processes over WebSocket training the MLP on
// MNIST, the SQLite ledger, and the checkpoint files on disk.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headlessSummary, startServer, type HeadlessSummary, type ServerProcess } from '../support/server-process';

describe('distributed training end to end', () => {
  let server: ServerProcess;
  let summary: HeadlessSummary;
  let exitCode: number | null;
  let db: Database.Database;

  beforeAll(async () => {
    server = await startServer(['--headless', '--nodes', '3', '--target-accuracy', '0.92', '--timeout', '400']);
    exitCode = await server.exited;
    summary = headlessSummary(server.output());
    db = new Database(path.join(server.dataDir, 'hypergpu.db'), { readonly: true });
  });

  afterAll(async () => {
    db?.close();
    await server?.stop();
  });

  it('reaches the target accuracy with 3 agents and exits 0 with a summary', () => {
    expect(exitCode, server.output().slice(-2000)).toBe(0);
    expect(summary).toMatchObject({ ok: true, state: 'completed', nodes: 3 });
    expect(summary.finalAccuracy).toBeGreaterThan(0.9);
    expect(summary.rounds).toBeGreaterThanOrEqual(20);
    expect(summary.samplesPerSecond).toBeGreaterThan(0);
    expect(server.output()).toMatch(/node local-1 \(#\d+\) joined: wasm/);
  });

  it('the loss falls and the test accuracy rises over the rounds', () => {
    const metrics = db
      .prepare('SELECT round, trainLoss, testAccuracy FROM Metric WHERE sessionId = ? ORDER BY round')
      .all(summary.sessionId) as { round: number; trainLoss: number; testAccuracy: number | null }[];
    expect(metrics.length).toBe(summary.rounds);
    const firstLoss = metrics.slice(0, 5).reduce((s, m) => s + m.trainLoss, 0) / 5;
    const lastLoss = metrics.slice(-5).reduce((s, m) => s + m.trainLoss, 0) / 5;
    expect(lastLoss).toBeLessThan(firstLoss / 2);
    const evaluated = metrics.filter((m) => m.testAccuracy !== null);
    expect(evaluated.length).toBeGreaterThanOrEqual(2);
    expect(evaluated[0].testAccuracy!).toBeLessThan(evaluated.at(-1)!.testAccuracy!);
    expect(evaluated.at(-1)!.testAccuracy!).toBeGreaterThan(0.9);
  });

  it('records exactly one applied contribution per node per round, matching the rounds and samples', () => {
    const rows = db
      .prepare('SELECT round, nodeId, samples FROM Contribution WHERE sessionId = ? ORDER BY round, nodeId')
      .all(summary.sessionId) as { round: number; nodeId: number; samples: number }[];
    const keys = new Set(rows.map((r) => `${r.round}/${r.nodeId}`));
    expect(keys.size).toBe(rows.length);
    const rounds = db.prepare('SELECT round, updates, samples, applied FROM Round WHERE sessionId = ? ORDER BY round').all(summary.sessionId) as {
      round: number;
      updates: number;
      samples: number;
      applied: number;
    }[];
    expect(rounds.length).toBe(summary.rounds);
    for (const round of rounds) {
      const mine = rows.filter((r) => r.round === round.round);
      expect(mine.length).toBe(round.applied ? round.updates : 0);
      expect(mine.reduce((s, r) => s + r.samples, 0)).toBe(round.samples);
    }
    expect(rows.reduce((s, r) => s + r.samples, 0)).toBe(summary.samples);
    // Every agent did real work, and once all three had joined, rounds used all of them.
    const perNode = new Map<number, number>();
    for (const r of rows) perNode.set(r.nodeId, (perNode.get(r.nodeId) ?? 0) + 1);
    expect(perNode.size).toBe(3);
    expect(rounds.filter((r) => r.updates === 3).length).toBeGreaterThan(rounds.length / 2);
  });

  it('writes checkpoint files whose sha256 matches the recorded hash', () => {
    const checkpoints = db.prepare('SELECT round, sha256, path, bytes FROM Checkpoint WHERE sessionId = ? ORDER BY round').all(summary.sessionId) as {
      round: number;
      sha256: string;
      path: string;
      bytes: number;
    }[];
    expect(checkpoints.length).toBeGreaterThanOrEqual(1);
    const last = checkpoints.at(-1)!;
    expect(last.round).toBe(summary.rounds);
    for (const checkpoint of checkpoints) {
      const file = path.isAbsolute(checkpoint.path) ? checkpoint.path : path.join(server.dataDir, checkpoint.path);
      const bytes = readFileSync(file);
      expect(bytes.length).toBe(checkpoint.bytes);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(checkpoint.sha256);
    }
  });
});
