// The Prisma + SQLite repository against the shared conformance suite, plus what only a real database has:
// migrations (idempotent, checksum-guarded) and the speed of the hot write path.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync, cpSync, appendFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { applyMigrations } from '../../src/server/adapters/db/migrate';
import { createPrismaRepository, defaultMigrationsDir } from '../../src/server/adapters/db/prisma-repository';
import {
  contributionOf,
  describeRepositoryConformance,
  metricOf,
  roundOf,
  sampleCapabilities,
  sampleConfig,
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
    expect(tables).toEqual(expect.arrayContaining(['TrainingSession', 'Node', 'Round', 'Contribution', 'RejectedUpdate', 'Metric', 'Checkpoint']));
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
      await repo.recordRound(roundOf(sessionId, r, { updates: 100, samples: 6400 }), contributions, metricOf(r));
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
