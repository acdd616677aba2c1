// Issue 9 (the soak): the coordinator's heap must stop growing with the rounds it commits. A Prisma batch that
// mixes model queries with raw multi-row INSERTs carries the raw values into Prisma's query plan cache key, so each
// such batch adds a plan no later one reuses; the round's commit was one (about 32 KB per round at 2 nodes with
// Prisma's default cache of 1,000 entries). QUERY_PLAN_CACHE_ENTRIES bounds the cache, and the round's commit is
// now raw statements only, which Prisma runs without compiling or caching a plan (round-commit-sql.ts).
// Measured on the real client and a real SQLite file, after full collections, because the cache is Prisma's
// private state: what matters is the heap, not the setting.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { QUERY_PLAN_CACHE_ENTRIES } from '../../src/server/adapters/db/client';
import { createPrismaRepository } from '../../src/server/adapters/db/prisma-repository';
import { contributionOf, credited, metricOf, roundCommitted, roundOf, sampleCapabilities, sampleConfig, sessionAfter, T0 } from '../support/repository-conformance';

const dir = mkdtempSync(join(tmpdir(), 'hypergpu-plan-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A gc() for this test without starting the whole worker with --expose-gc.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('Prisma query plan cache', () => {
  it('holds a bounded number of round commits: the heap stops growing once the cache is full', async () => {
    const repo = await createPrismaRepository(join(dir, 'db.sqlite'), { synchronous: 'NORMAL' });
    const sessionId = await repo.createSession(sampleConfig, T0);
    const nodes: number[] = [];
    // 8 nodes: a round's plan is then about 40 KB, so the default cache adds megabytes over the rounds below.
    for (let i = 0; i < 8; i++) nodes.push(await repo.upsertNode(`node-${i}`, sampleCapabilities({ hostname: `box-${i}` }), T0));

    let round = 0;
    async function commitRounds(count: number): Promise<void> {
      for (let i = 0; i < count; i++) {
        const r = ++round;
        const summary = roundOf(sessionId, r, { modelVersion: r, totalSamples: 128 * nodes.length * r, samples: 128 * nodes.length, updates: nodes.length });
        const metric = metricOf(r, { at: T0 + 300 * r, trainLoss: 1 / r });
        await repo.recordRound(
          summary,
          nodes.map((n, k) => contributionOf(sessionId, r, n, { trainLoss: 1 / (r + k), receivedAt: T0 + 300 * r + k })),
          metric,
          sessionAfter(summary, { samplesPerSecond: 1000 + r, lastRoundDurationMs: r % 300 }),
          [roundCommitted(summary, metric), ...nodes.map((n) => credited(sessionId, r, n, 'applied', 128))],
        );
      }
    }

    // Fill the cache (and warm everything else up), then commit as many rounds again.
    await commitRounds(2 * QUERY_PLAN_CACHE_ENTRIES);
    const full = heapAfterGc();
    const more = 3 * QUERY_PLAN_CACHE_ENTRIES;
    await commitRounds(more);
    const grown = heapAfterGc() - full;

    // With Prisma's default cache these rounds kept 7.9 MB (measured: about 42 KB each); bounded, only noise.
    expect(grown, `heap grew ${(grown / 2 ** 20).toFixed(1)} MB over ${more} more rounds`).toBeLessThan(3 * 2 ** 20);
    expect((await repo.lastRound(sessionId))?.round).toBe(round);
  }, 120_000);

  it('compiles no plan for a round commit: the first rounds after the warm-up keep nothing either', async () => {
    // A round's commit is raw statements only (adapters/db/round-commit-sql.ts), which Prisma runs without its
    // query compiler and caches nowhere. When one model query was in the batch, each of these rounds compiled and
    // cached a plan of its own (about 40 KB at 8 nodes: 2.5 MB over the rounds below, until the cache filled).
    const repo = await createPrismaRepository(join(dir, 'db-raw.sqlite'), { synchronous: 'NORMAL' });
    const sessionId = await repo.createSession(sampleConfig, T0);
    const nodes: number[] = [];
    for (let i = 0; i < 8; i++) nodes.push(await repo.upsertNode(`node-${i}`, sampleCapabilities({ hostname: `box-${i}` }), T0));
    let round = 0;
    async function commitRounds(count: number): Promise<void> {
      for (let i = 0; i < count; i++) {
        const r = ++round;
        const summary = roundOf(sessionId, r, { modelVersion: r, totalSamples: 128 * nodes.length * r, samples: 128 * nodes.length, updates: nodes.length });
        const metric = metricOf(r, { at: T0 + 300 * r, trainLoss: 1 / r });
        await repo.recordRound(
          summary,
          nodes.map((n, k) => contributionOf(sessionId, r, n, { trainLoss: 1 / (r + k), receivedAt: T0 + 300 * r + k })),
          metric,
          sessionAfter(summary, { samplesPerSecond: 1000 + r, lastRoundDurationMs: r % 300 }),
          [roundCommitted(summary, metric), ...nodes.map((n) => credited(sessionId, r, n, 'applied', 128))],
        );
      }
    }
    await commitRounds(8);
    const warm = heapAfterGc();
    const more = QUERY_PLAN_CACHE_ENTRIES;
    await commitRounds(more);
    const grown = heapAfterGc() - warm;
    expect(grown, `heap grew ${(grown / 2 ** 20).toFixed(2)} MB over ${more} rounds`).toBeLessThan(2 ** 20);
    expect((await repo.listRounds(sessionId)).length).toBe(round);
  }, 120_000);
});
