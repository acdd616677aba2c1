// What `PRAGMA synchronous = FULL` costs a round's commit: recordRound of a round with 100 contributions, a
// metric, the session and its outbox events, on a temporary SQLite file (on the data disk, not tmpfs), with
// FULL and with NORMAL, interleaved so load changes hit both alike. Standalone (not in `npm run bench`):
//   npx tsx bench/commit-durability.ts [--rounds 200] [--contributions 100] [--dir <folder on the data disk>]
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createPrismaRepository } from '../src/server/adapters/db/prisma-repository';
import { openDb } from '../src/server/adapters/db/client';
import type { CommittedEvent } from '../src/server/core/engine/committed';
import type { TrainingRepository } from '../src/server/core/ports';
import { contributionOf, metricOf, roundCommitted, roundOf, sampleCapabilities, sampleConfig, sessionAfter, T0 } from '../tests/support/repository-conformance';

const { values } = parseArgs({ options: { rounds: { type: 'string' }, contributions: { type: 'string' }, dir: { type: 'string' } } });
const ROUNDS = Number(values.rounds ?? 200);
const CONTRIBUTIONS = Number(values.contributions ?? 100);
const base = mkdtempSync(path.join(values.dir ?? os.tmpdir(), 'hypergpu-sync-'));

interface Setup {
  repo: TrainingRepository;
  sessionId: number;
  nodeIds: number[];
  next: number;
}

async function setup(mode: 'FULL' | 'NORMAL'): Promise<Setup> {
  const file = path.join(base, `${mode}.db`);
  // The pragma really is what we asked for on the connection the repository writes through.
  const probe = await openDb(file, { synchronous: mode });
  const [row] = await probe.prisma.$queryRawUnsafe<{ synchronous: bigint | number }[]>('PRAGMA synchronous');
  await probe.prisma.$disconnect();
  if (Number(row.synchronous) !== (mode === 'FULL' ? 2 : 1)) throw new Error(`asked for ${mode}, connection says ${row.synchronous}`);
  const repo = await createPrismaRepository(file, { synchronous: mode });
  const sessionId = await repo.createSession(sampleConfig, T0);
  const nodeIds: number[] = [];
  for (let i = 0; i < CONTRIBUTIONS; i++) nodeIds.push(await repo.upsertNode(`node-${i}`, sampleCapabilities({ hostname: `box-${i}` }), T0));
  return { repo, sessionId, nodeIds, next: 1 };
}

async function commitOne(s: Setup): Promise<number> {
  const r = s.next++;
  const round = roundOf(s.sessionId, r, { updates: CONTRIBUTIONS, samples: 128 * CONTRIBUTIONS });
  const contributions = s.nodeIds.map((nodeId) => contributionOf(s.sessionId, r, nodeId));
  const metric = metricOf(r);
  // As the engine writes a round: the round event and one credit per node.
  const events: CommittedEvent[] = [
    roundCommitted(round, metric),
    ...s.nodeIds.map((nodeId): CommittedEvent => ({ kind: 'node-credited', sessionId: s.sessionId, round: r, nodeId, status: 'applied', samples: 64 })),
  ];
  const started = process.hrtime.bigint();
  await s.repo.recordRound(round, contributions, metric, sessionAfter(round), events);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

async function main(): Promise<void> {
  const fs = statfsSync(base);
  const full = await setup('FULL');
  const normal = await setup('NORMAL');
  const times: Record<'FULL' | 'NORMAL', number[]> = { FULL: [], NORMAL: [] };
  // Warm-up, then interleaved.
  for (let i = 0; i < 5; i++) {
    await commitOne(full);
    await commitOne(normal);
  }
  for (let i = 0; i < ROUNDS; i++) {
    times.FULL.push(await commitOne(full));
    times.NORMAL.push(await commitOne(normal));
  }
  await full.repo.close();
  await normal.repo.close();
  const summary = Object.fromEntries(
    Object.entries(times).map(([mode, t]) => {
      const sorted = [...t].sort((a, b) => a - b);
      return [mode, { median_ms: +pct(sorted, 0.5).toFixed(2), p95_ms: +pct(sorted, 0.95).toFixed(2), mean_ms: +(t.reduce((a, b) => a + b, 0) / t.length).toFixed(2) }];
    }),
  );
  const result = { rounds: ROUNDS, contributionsPerRound: CONTRIBUTIONS, dir: base, fsType: fs.type, loadavg: os.loadavg().map((l) => +l.toFixed(2)), ...summary };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  rmSync(base, { recursive: true, force: true });
}

main().catch((error) => {
  rmSync(base, { recursive: true, force: true });
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
