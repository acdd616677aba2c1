// The Prisma + SQLite repository against the shared conformance suite, plus what only a real database has:
// migrations (idempotent, checksum-guarded) and the speed of the hot write path.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync, cpSync, appendFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Prisma, PrismaClient } from '../../src/server/adapters/db/generated/client';
import { applyMigrations } from '../../src/server/adapters/db/migrate';
import { createPrismaRepository, defaultMigrationsDir } from '../../src/server/adapters/db/prisma-repository';
import {
  contributionOf,
  describeRepositoryConformance,
  metricOf,
  roundOf,
  sampleCapabilities,
  sampleConfig,
  sessionAfter,
} from '../support/repository-conformance';

// One temporary folder for this file; each test gets a fresh database file in it.
const dir = mkdtempSync(join(tmpdir(), 'hypergpu-prisma-'));
let files = 0;
const nextDbFile = () => join(dir, `db-${++files}`, 'test.db');

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeRepositoryConformance('prisma + sqlite', () => createPrismaRepository(nextDbFile()));

describe('migrations', () => {
  it('creates the folder and the database, applies once, and is idempotent', () => {
    const file = nextDbFile();
    const logs: string[] = [];
    expect(applyMigrations(file, defaultMigrationsDir(), (m) => logs.push(m))).toEqual([expect.stringMatching(/_init$/)]);
    expect(existsSync(file)).toBe(true);
    expect(applyMigrations(file, defaultMigrationsDir())).toEqual([]);

    const db = new Database(file, { readonly: true });
    const rows = db.prepare('SELECT migration_name, checksum, finished_at, applied_steps_count FROM _prisma_migrations').all();
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
    const journal = db.pragma('journal_mode', { simple: true });
    db.close();
    expect(rows).toEqual([
      { migration_name: expect.stringMatching(/_init$/), checksum: expect.stringMatching(/^[0-9a-f]{64}$/), finished_at: expect.any(Number), applied_steps_count: 1 },
    ]);
    expect(tables).toEqual(
      expect.arrayContaining(['TrainingSession', 'Node', 'Round', 'Contribution', 'RejectedUpdate', 'Metric', 'Checkpoint', 'SessionEvent']),
    );
    expect(journal).toBe('wal');
  });

  it('applies a new migration later and refuses to run when an applied one was edited', () => {
    const migrations = join(dir, 'migrations-copy');
    cpSync(defaultMigrationsDir(), migrations, { recursive: true });
    const file = nextDbFile();
    applyMigrations(file, migrations);

    mkdirSync(join(migrations, '29990101000000_add_note'));
    writeFileSync(join(migrations, '29990101000000_add_note', 'migration.sql'), 'ALTER TABLE "Node" ADD COLUMN "note" TEXT;\n');
    expect(applyMigrations(file, migrations)).toEqual(['29990101000000_add_note']);

    appendFileSync(join(migrations, '29990101000000_add_note', 'migration.sql'), '-- edited\n');
    expect(() => applyMigrations(file, migrations)).toThrow(/29990101000000_add_note was modified after it was applied/);
  });

  it('rolls back a failing migration completely', () => {
    const migrations = join(dir, 'migrations-broken');
    cpSync(defaultMigrationsDir(), migrations, { recursive: true });
    mkdirSync(join(migrations, '29990101000000_broken'));
    writeFileSync(
      join(migrations, '29990101000000_broken', 'migration.sql'),
      'CREATE TABLE "Half" ("id" INTEGER);\nTHIS IS NOT SQL;\n',
    );
    const file = nextDbFile();
    expect(() => applyMigrations(file, migrations)).toThrow(/29990101000000_broken failed/);
    const db = new Database(file, { readonly: true });
    const half = db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'Half'").pluck().get();
    const recorded = db.prepare('SELECT migration_name FROM _prisma_migrations').pluck().all();
    db.close();
    expect(half).toBe(0);
    expect(recorded).toEqual([expect.stringMatching(/_init$/)]);
  });
});

describe('prisma repository on disk', () => {
  it('keeps data across reopening (resume after a coordinator restart)', async () => {
    const file = nextDbFile();
    const first = await createPrismaRepository(`file:${file}`);
    const id = await first.createSession(sampleConfig, 1000);
    await first.updateSession({ ...(await first.getSession(id))!, state: 'running', round: 3 });
    await first.close();

    const second = await createPrismaRepository(file);
    expect(await second.findResumableSession()).toMatchObject({ id, state: 'running', round: 3 });
    await second.close();
  });

  it('records a round of 100 contributions quickly (reports the time)', async () => {
    const repo = await createPrismaRepository(nextDbFile());
    const sessionId = await repo.createSession(sampleConfig, 0);
    const nodeIds: number[] = [];
    for (let i = 0; i < 100; i++) nodeIds.push(await repo.upsertNode(`n${i}`, sampleCapabilities(), 0));

    const times: number[] = [];
    for (let r = 1; r <= 20; r++) {
      const contributions = nodeIds.map((nodeId) => contributionOf(sessionId, r, nodeId));
      const started = performance.now();
      const round = roundOf(sessionId, r, { updates: 100, samples: 6400, totalSamples: 6400 * r });
      await repo.recordRound(round, contributions, metricOf(r), sessionAfter(round));
      times.push(performance.now() - started);
    }
    const sorted = [...times].sort((a, b) => a - b);
    console.log(
      `recordRound x100 contributions: first ${times[0].toFixed(1)} ms, median ${sorted[10].toFixed(1)} ms, max ${sorted[19].toFixed(1)} ms`,
    );
    expect(await repo.listContributions(sessionId)).toHaveLength(2000);
    // Generous bound: a round lasts seconds; this only catches a pathological regression.
    expect(sorted[10]).toBeLessThan(500);
    await repo.close();
  });
});

// The migration SQL is written by hand or by prisma/schema-diff.ts, never checked by Prisma at run time here, so
// these two tests are what tie it to the schema the client was generated from.
describe('schema and migration agree', () => {
  const scalarFields: Record<string, Record<string, string>> = {
    TrainingSession: Prisma.TrainingSessionScalarFieldEnum,
    Node: Prisma.NodeScalarFieldEnum,
    Round: Prisma.RoundScalarFieldEnum,
    Contribution: Prisma.ContributionScalarFieldEnum,
    RejectedUpdate: Prisma.RejectedUpdateScalarFieldEnum,
    Metric: Prisma.MetricScalarFieldEnum,
    Checkpoint: Prisma.CheckpointScalarFieldEnum,
    SessionEvent: Prisma.SessionEventScalarFieldEnum,
  };

  it('has a table for every model with exactly the columns of its scalar fields', () => {
    expect(Object.keys(scalarFields).sort()).toEqual(Object.values(Prisma.ModelName).sort());
    const file = nextDbFile();
    applyMigrations(file, defaultMigrationsDir());
    const db = new Database(file, { readonly: true });
    try {
      for (const [model, fields] of Object.entries(scalarFields)) {
        const columns = (db.pragma(`table_info("${model}")`) as { name: string }[]).map((c) => c.name);
        expect({ model, columns: columns.sort() }).toEqual({ model, columns: Object.values(fields).sort() });
      }
    } finally {
      db.close();
    }
  });

  it('round-trips a row of every model, every field set, through the generated client', async () => {
    const file = nextDbFile();
    applyMigrations(file, defaultMigrationsDir());
    const prisma = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: file }) });
    try {
      const at = new Date(Date.UTC(2026, 0, 1, 12, 30, 15, 123));
      const big = 2n ** 40n + 7n;
      const session = {
        state: 'running', config: '{"model":"mlp"}', round: 3, modelVersion: 2, epoch: 1, totalSamples: big, startedAt: at,
        endedAt: at, lastTestAccuracy: 0.5, lastTestLoss: 0.25, lastRoundDurationMs: 812, samplesPerSecond: 1.5, message: 'm',
      };
      const { id: sessionId } = await prisma.trainingSession.create({ data: session });
      const node = {
        name: 'n', backend: 'wasm', device: 'cpu', samplesPerSecond: 2.5, agentVersion: '0.1.0', hostname: 'h', firstSeenAt: at, lastSeenAt: at, tokenHash: 'cd'.repeat(32),
      };
      const { id: nodeId } = await prisma.node.create({ data: node });
      const round = {
        sessionId, round: 1, modelVersion: 1, openedAt: at, closedAt: at, applied: true, updates: 1, samples: 64, trainLoss: 0.5,
        failures: 0, totalSamples: big, cursor: '{"epoch":0,"position":64,"pending":[]}',
      };
      const contribution = {
        sessionId, round: 1, nodeId, attempt: 1, samples: 64, epoch: 2, shardStart: 128, shardCount: 64, checksum: 0xffffffffn,
        trainLoss: 0.5, receivedAt: at,
      };
      const metric = {
        sessionId, round: 1, at, trainLoss: 0.5, testLoss: 0.4, testAccuracy: 0.9, samples: 64, totalSamples: big, samplesPerSecond: 3.5,
        roundDurationMs: 750, nodes: 1,
      };
      const checkpoint = { sessionId, round: 1, modelVersion: 1, sha256: 'a'.repeat(64), path: '/x', bytes: big, createdAt: at };
      const event = { sessionId, at, round: 1, kind: 'node-joined', message: 'joined', nodeId: 12345, detail: '{"a":1}' };
      const rows = [
        [session, await prisma.trainingSession.findUniqueOrThrow({ where: { id: sessionId } })],
        [node, await prisma.node.findUniqueOrThrow({ where: { id: nodeId } })],
        [round, await prisma.round.findUniqueOrThrow({ where: { id: (await prisma.round.create({ data: round })).id } })],
        [contribution, await prisma.contribution.findUniqueOrThrow({ where: { id: (await prisma.contribution.create({ data: contribution })).id } })],
        [{ ...contribution, reason: 'NORM' }, await prisma.rejectedUpdate.findUniqueOrThrow({
          where: { id: (await prisma.rejectedUpdate.create({ data: { ...contribution, reason: 'NORM' } })).id },
        })],
        [metric, await prisma.metric.findUniqueOrThrow({ where: { id: (await prisma.metric.create({ data: metric })).id } })],
        [checkpoint, await prisma.checkpoint.findUniqueOrThrow({ where: { id: (await prisma.checkpoint.create({ data: checkpoint })).id } })],
        [event, await prisma.sessionEvent.findUniqueOrThrow({ where: { id: (await prisma.sessionEvent.create({ data: event })).id } })],
      ] as const;
      for (const [written, read] of rows) expect(read).toEqual({ id: expect.any(Number), ...written });
      // Deleting the session cascades to everything that belongs to it (the node stays).
      await prisma.trainingSession.delete({ where: { id: sessionId } });
      expect(await prisma.sessionEvent.count()).toBe(0);
      expect(await prisma.round.count()).toBe(0);
      expect(await prisma.rejectedUpdate.count()).toBe(0);
      expect(await prisma.node.count()).toBe(1);
    } finally {
      await prisma.$disconnect();
    }
  });
});
