// The Prisma + SQLite repository against the shared conformance suite, plus what only a real database has:
// migrations (idempotent, checksum-guarded, upgrading an existing database), rows damaged on disk, and the
// speed of the hot write path.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, cpSync, appendFileSync, existsSync } from 'node:fs';
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
  credited,
  describeRepositoryConformance,
  metricOf,
  roundCommitted,
  roundOf,
  sampleCapabilities,
  sampleConfig,
  sessionAfter,
  started,
  stateChanged,
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
    expect(applyMigrations(file, defaultMigrationsDir(), (m) => logs.push(m))).toEqual([
      expect.stringMatching(/_init$/),
      expect.stringMatching(/_outbox$/),
      expect.stringMatching(/_rejection_count$/),
      expect.stringMatching(/_join_tokens$/),
      expect.stringMatching(/_chain$/),
      expect.stringMatching(/_audit$/),
      expect.stringMatching(/_pool$/),
      expect.stringMatching(/_contribution_scale$/),
    ]);
    expect(existsSync(file)).toBe(true);
    expect(applyMigrations(file, defaultMigrationsDir())).toEqual([]);

    const db = new Database(file, { readonly: true });
    const rows = db.prepare('SELECT migration_name, checksum, finished_at, applied_steps_count FROM _prisma_migrations').all();
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
    const journal = db.pragma('journal_mode', { simple: true });
    db.close();
    const applied = (name: RegExp) => ({
      migration_name: expect.stringMatching(name),
      checksum: expect.stringMatching(/^[0-9a-f]{64}$/),
      finished_at: expect.any(Number),
      applied_steps_count: 1,
    });
    expect(rows).toEqual([applied(/_init$/), applied(/_outbox$/), applied(/_rejection_count$/), applied(/_join_tokens$/), applied(/_chain$/), applied(/_audit$/), applied(/_pool$/), applied(/_contribution_scale$/)]);
    expect(tables).toEqual(
      expect.arrayContaining([
        'TrainingSession', 'Node', 'Round', 'Contribution', 'RejectedUpdate', 'Metric', 'Checkpoint', 'SessionEvent', 'OutboxEvent', 'OutboxCursor', 'JoinToken', 'Audit', 'EpochForfeit', 'EpochAudit', 'Settlement', 'SettlementEntry',
      ]),
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
    expect(recorded).toEqual([expect.stringMatching(/_init$/), expect.stringMatching(/_outbox$/), expect.stringMatching(/_rejection_count$/), expect.stringMatching(/_join_tokens$/), expect.stringMatching(/_chain$/), expect.stringMatching(/_audit$/), expect.stringMatching(/_pool$/), expect.stringMatching(/_contribution_scale$/)]);
  });

  it('upgrades a database the init migration created, keeping its rows, and the outbox works after', async () => {
    const initOnly = join(dir, 'migrations-init-only');
    mkdirSync(initOnly);
    cpSync(join(defaultMigrationsDir(), 'migration_lock.toml'), join(initOnly, 'migration_lock.toml'));
    const init = readdirSync(defaultMigrationsDir()).find((name) => name.endsWith('_init'))!;
    cpSync(join(defaultMigrationsDir(), init), join(initOnly, init), { recursive: true });

    // A database as the previous release left it: data in it, no outbox tables.
    const file = nextDbFile();
    const old = await createPrismaRepository(file, { migrationsDir: initOnly });
    const id = await old.createSession(sampleConfig, 1000);
    const nodeId = await old.upsertNode('alpha', sampleCapabilities(), 1000);
    const round = roundOf(id, 1);
    await old.recordRound(round, [contributionOf(id, 1, nodeId)], metricOf(1), sessionAfter(round));
    await old.close();
    const before = new Database(file, { readonly: true });
    expect(before.prepare("SELECT count(*) FROM sqlite_master WHERE name LIKE 'Outbox%'").pluck().get()).toBe(0);
    before.close();

    const logs: string[] = [];
    const upgraded = await createPrismaRepository(file, { log: (m) => logs.push(m) });
    expect(logs).toEqual([
      expect.stringMatching(/^applied migration \d+_outbox$/),
      expect.stringMatching(/^applied migration \d+_rejection_count$/),
      expect.stringMatching(/^applied migration \d+_join_tokens$/),
      expect.stringMatching(/^applied migration \d+_chain$/),
      expect.stringMatching(/^applied migration \d+_audit$/),
      expect.stringMatching(/^applied migration \d+_pool$/),
      expect.stringMatching(/^applied migration \d+_contribution_scale$/),
    ]);
    expect(await upgraded.getSession(id)).toEqual(sessionAfter(round));
    expect(await upgraded.listContributions(id)).toEqual([contributionOf(id, 1, nodeId)]);
    const round2 = roundOf(id, 2);
    const records = await upgraded.recordRound(round2, [], null, sessionAfter(round2), [roundCommitted(round2, metricOf(2))]);
    expect(await upgraded.readOutbox(0, 10)).toEqual(records);
    expect(await upgraded.lastSessionId()).toBe(id);
    await upgraded.close();
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
      // With the events a commit brings: the round, and a credit for every node in it.
      const events = [roundCommitted(round, metricOf(r)), ...nodeIds.map((nodeId) => credited(sessionId, r, nodeId, 'applied', 64))];
      await repo.recordRound(round, contributions, metricOf(r), sessionAfter(round), events);
      times.push(performance.now() - started);
    }
    const sorted = [...times].sort((a, b) => a - b);
    console.log(
      `recordRound x100 contributions + 101 outbox events: first ${times[0].toFixed(1)} ms, median ${sorted[10].toFixed(1)} ms, max ${sorted[19].toFixed(1)} ms`,
    );
    expect(await repo.listContributions(sessionId)).toHaveLength(2000);
    expect(await repo.readOutbox(0, 10_000)).toHaveLength(20 * 101);
    // Generous bound: a round lasts seconds; this only catches a pathological regression.
    expect(sorted[10]).toBeLessThan(500);
    await repo.close();
  });

  // The round's commit runs on a second connection (direct-sql.ts), not through Prisma's client: what it stores
  // must be what Prisma's own writes store, byte for byte, or a later Prisma read or a PostgreSQL migration of the
  // data would see two formats in one column.
  it('stores the round commit in the column formats of Prisma own writes', async () => {
    const file = nextDbFile();
    const repo = await createPrismaRepository(file);
    const sessionId = await repo.createSession(sampleConfig, T0_DATES);
    const nodeId = await repo.upsertNode('fmt', sampleCapabilities(), T0_DATES);
    const round = roundOf(sessionId, 1, { openedAt: T0_DATES + 5, closedAt: T0_DATES + 6 });
    await repo.recordRound(round, [contributionOf(sessionId, 1, nodeId, { receivedAt: T0_DATES + 7 })], metricOf(1, { at: T0_DATES + 8 }), sessionAfter(round), [roundCommitted(round, metricOf(1))]);
    await repo.close();

    const raw = new Database(file, { readonly: true });
    // Written by Prisma (upsertNode) and by the direct connection (the rest): the same text form.
    const prismaDate = raw.prepare('SELECT "firstSeenAt" AS v, typeof("firstSeenAt") AS t FROM "Node"').get() as { v: string; t: string };
    const directDates = [
      raw.prepare('SELECT "openedAt" AS v, typeof("openedAt") AS t FROM "Round"').get(),
      raw.prepare('SELECT "receivedAt" AS v, typeof("receivedAt") AS t FROM "Contribution"').get(),
      raw.prepare('SELECT "at" AS v, typeof("at") AS t FROM "Metric"').get(),
      raw.prepare('SELECT "createdAt" AS v, typeof("createdAt") AS t FROM "OutboxEvent"').get(),
    ] as { v: string; t: string }[];
    expect(prismaDate).toEqual({ v: new Date(T0_DATES).toISOString().replace('Z', '+00:00'), t: 'text' });
    for (const d of directDates) expect(d).toMatchObject({ t: 'text', v: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$/) });
    expect(directDates[0].v).toBe(new Date(T0_DATES + 5).toISOString().replace('Z', '+00:00'));
    // BigInt and Boolean columns as integers, like Prisma's.
    expect(raw.prepare('SELECT typeof("checksum") AS c FROM "Contribution"').get()).toEqual({ c: 'integer' });
    expect(raw.prepare('SELECT typeof("applied") AS a, typeof("totalSamples") AS s FROM "Round"').get()).toEqual({ a: 'integer', s: 'integer' });
    raw.close();
  });

  it('waits for another process holding the write lock, then commits the round (busy timeout, not a failure)', async () => {
    const file = nextDbFile();
    const repo = await createPrismaRepository(file);
    const sessionId = await repo.createSession(sampleConfig, 0);
    const nodeId = await repo.upsertNode('busy', sampleCapabilities(), 0);
    // Another process, not a connection here: better-sqlite3 waits for the lock synchronously, so a release from
    // this thread's timers could never run.
    const holder = spawnLockHolder(file, 400);
    await holder.locked;
    const round = roundOf(sessionId, 1);
    const started = performance.now();
    await repo.recordRound(round, [contributionOf(sessionId, 1, nodeId)], metricOf(1), sessionAfter(round), [roundCommitted(round, metricOf(1))]);
    expect(performance.now() - started).toBeGreaterThan(100);
    await holder.exited;
    expect(await repo.listContributions(sessionId)).toHaveLength(1);
    expect((await repo.lastRound(sessionId))?.round).toBe(1);
    await repo.close();
  });
});

const T0_DATES = Date.UTC(2026, 10, 30, 12, 0, 0, 123);

/** A child process that takes SQLite's write lock on `file`, says so on stdout, and holds it for `holdMs`. */
function spawnLockHolder(file: string, holdMs: number): { locked: Promise<void>; exited: Promise<void> } {
  const script = `const D = require('better-sqlite3'); const db = new D(${JSON.stringify(file)}); db.exec('BEGIN IMMEDIATE'); process.stdout.write('locked\\n'); setTimeout(() => { db.exec('ROLLBACK'); db.close(); }, ${holdMs});`;
  const child = spawn(process.execPath, ['-e', script], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && resolve());
    child.once('exit', (code) => reject(new Error(`lock holder exited (${code}) before taking the lock`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { locked, exited };
}

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
    OutboxEvent: Prisma.OutboxEventScalarFieldEnum,
    OutboxCursor: Prisma.OutboxCursorScalarFieldEnum,
    JoinToken: Prisma.JoinTokenScalarFieldEnum,
    Audit: Prisma.AuditScalarFieldEnum,
    EpochForfeit: Prisma.EpochForfeitScalarFieldEnum,
    EpochAudit: Prisma.EpochAuditScalarFieldEnum,
    Settlement: Prisma.SettlementScalarFieldEnum,
    SettlementEntry: Prisma.SettlementEntryScalarFieldEnum,
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
        walletAddress: `0x${'ab'.repeat(20)}`, payoutAddress: `0x${'cd'.repeat(20)}`,
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
      const outboxEvent = { sessionId, kind: 'epoch-closed', payload: '{"kind":"epoch-closed"}', createdAt: at };
      const outboxCursor = { consumer: 'live-view', position: 2 ** 31 - 1, updatedAt: at };
      const joinToken = { tokenHash: 'ef'.repeat(32), label: 'pool', nodeName: 'n', createdAt: at, expiresAt: at, revokedAt: at };
      const audit = {
        sessionId, epoch: 2, round: 1, nodeId, attempt: 1, modelVersion: 0, shardStart: 128, shardCount: 64, outcome: 'fail', selectedBy: 'reservoir',
        relativeError: 1.41, cosine: -0.01, tolerance: 0.001, detail: 'differs', selectedAt: at, resolvedAt: at,
      };
      const forfeit = { sessionId, epoch: 2, nodeId, reason: 'AUDIT_FAILED: x', at };
      const epochAudit = { sessionId, epoch: 2, audits: 3, forfeited: 1, at };
      // Amounts are decimal strings of base units: a uint256 does not fit SQLite's integers.
      const settlement = { seq: 7, sessionId, epoch: 2, root: `0x${'12'.repeat(32)}`, total: (2n ** 200n).toString(), status: 'committed', txHash: `0x${'34'.repeat(32)}`, createdAt: at, committedAt: at };
      const rows = [
        [session, await prisma.trainingSession.findUniqueOrThrow({ where: { id: sessionId } })],
        [node, await prisma.node.findUniqueOrThrow({ where: { id: nodeId } })],
        [round, await prisma.round.findUniqueOrThrow({ where: { id: (await prisma.round.create({ data: round })).id } })],
        [{ ...contribution, outlierScore: 1.25, scale: 0.5 }, await prisma.contribution.findUniqueOrThrow({ where: { id: (await prisma.contribution.create({ data: { ...contribution, outlierScore: 1.25, scale: 0.5 } })).id } })],
        [{ ...contribution, reason: 'NORM', count: 3 }, await prisma.rejectedUpdate.findUniqueOrThrow({
          where: { id: (await prisma.rejectedUpdate.create({ data: { ...contribution, reason: 'NORM', count: 3 } })).id },
        })],
        [metric, await prisma.metric.findUniqueOrThrow({ where: { id: (await prisma.metric.create({ data: metric })).id } })],
        [checkpoint, await prisma.checkpoint.findUniqueOrThrow({ where: { id: (await prisma.checkpoint.create({ data: checkpoint })).id } })],
        [event, await prisma.sessionEvent.findUniqueOrThrow({ where: { id: (await prisma.sessionEvent.create({ data: event })).id } })],
        [outboxEvent, await prisma.outboxEvent.findUniqueOrThrow({ where: { id: (await prisma.outboxEvent.create({ data: outboxEvent })).id } })],
        [joinToken, await prisma.joinToken.findUniqueOrThrow({ where: { id: (await prisma.joinToken.create({ data: joinToken })).id } })],
        [audit, await prisma.audit.findUniqueOrThrow({ where: { id: (await prisma.audit.create({ data: audit })).id } })],
        [forfeit, await prisma.epochForfeit.findUniqueOrThrow({ where: { id: (await prisma.epochForfeit.create({ data: forfeit })).id } })],
        [settlement, await prisma.settlement.findUniqueOrThrow({ where: { id: (await prisma.settlement.create({ data: settlement })).id } })],
      ] as const;
      const settlementId = (await prisma.settlement.findUniqueOrThrow({ where: { seq: 7 } })).id;
      const entry = { settlementId, nodeId, address: `0x${'cd'.repeat(20)}`, samples: 64, amount: (2n ** 199n).toString(), cumulative: (2n ** 200n).toString(), reason: null };
      const { id: entryId } = await prisma.settlementEntry.create({ data: entry });
      expect(await prisma.settlementEntry.findUniqueOrThrow({ where: { id: entryId } })).toEqual({ id: entryId, ...entry });
      await prisma.epochAudit.create({ data: epochAudit });
      expect(await prisma.epochAudit.findUniqueOrThrow({ where: { sessionId_epoch: { sessionId, epoch: 2 } } })).toEqual(epochAudit);
      for (const [written, read] of rows) expect(read).toEqual({ id: expect.any(Number), ...written });
      await prisma.outboxCursor.create({ data: outboxCursor });
      expect(await prisma.outboxCursor.findUniqueOrThrow({ where: { consumer: 'live-view' } })).toEqual(outboxCursor);
      expect((await prisma.outboxEvent.create({ data: { ...outboxEvent, sessionId: null } })).sessionId).toBeNull();
      // Deleting the session cascades to everything that belongs to it (the node stays).
      await prisma.trainingSession.delete({ where: { id: sessionId } });
      expect(await prisma.sessionEvent.count()).toBe(0);
      expect(await prisma.round.count()).toBe(0);
      expect(await prisma.rejectedUpdate.count()).toBe(0);
      expect(await prisma.node.count()).toBe(1);
      // The outbox is history, not a child of the session: deleting the session leaves its events.
      expect(await prisma.outboxEvent.count()).toBe(2);
    } finally {
      await prisma.$disconnect();
    }
  });
});

describe('outbox on disk', () => {
  it('keeps events and cursors across reopening, and ids keep growing after everything was pruned', async () => {
    const file = nextDbFile();
    const first = await createPrismaRepository(file);
    const id = await first.createSession(sampleConfig, 1000, { id: 1, outbox: [started(1, 1000)] });
    const session = (await first.getSession(id))!;
    const records = await first.updateSession({ ...session, state: 'running' }, [stateChanged(id, 'running', 2000)]);
    await first.saveOutboxCursor('live-view', records[0].id);
    expect(await first.pruneOutbox(records[0].id)).toBe(2);
    await first.close();

    const second = await createPrismaRepository(file);
    expect(await second.outboxCursor('live-view')).toBe(records[0].id);
    expect(await second.readOutbox(0, 10)).toEqual([]);
    const [next] = await second.updateSession({ ...session, state: 'paused' }, [stateChanged(id, 'paused', 3000)]);
    expect(next.id).toBeGreaterThan(records[0].id);
    await second.close();
  });

  it('writes the sessionId and kind columns from the event', async () => {
    const file = nextDbFile();
    const repo = await createPrismaRepository(file);
    await repo.createSession(sampleConfig, 1000, { id: 42, outbox: [started(42, 1000)] });
    await repo.close();
    const db = new Database(file, { readonly: true });
    const rows = db.prepare('SELECT "sessionId", "kind", "payload" FROM "OutboxEvent"').all() as { sessionId: number; kind: string; payload: string }[];
    db.close();
    expect(rows).toEqual([{ sessionId: 42, kind: 'session-started', payload: JSON.stringify(started(42, 1000)) }]);
  });

  it('raises CORRUPT_RECORD with the row id for a damaged outbox row, and reads on past it', async () => {
    const file = nextDbFile();
    applyMigrations(file, defaultMigrationsDir());
    const good = JSON.stringify(stateChanged(1, 'running', 1000));
    const damaged: Array<[number | null, string, string, RegExp]> = [
      [1, 'session-state-changed', '{"kind":"session-state-changed","sessionId":1,', /payload is not JSON/],
      [1, 'session-state-changed', JSON.stringify({ ...stateChanged(1, 'running', 1000), state: 'exploded' }), /state must be one of/],
      [1, 'round-committed', JSON.stringify({ kind: 'round-committed', sessionId: 1, round: 1 }), /round-committed.applied must be a boolean/],
      [1, 'node-credited', good, /kind column says node-credited, payload says session-state-changed/],
      [2, 'session-state-changed', good, /sessionId column says 2, payload says 1/],
      [1, 'session-state-changed', '[]', /event must be an object/],
    ];
    const db = new Database(file);
    const insert = db.prepare('INSERT INTO "OutboxEvent" ("sessionId", "kind", "payload", "createdAt") VALUES (?, ?, ?, ?)');
    const ids = damaged.map(([sessionId, kind, payload]) => Number(insert.run(sessionId, kind, payload, new Date(0).toISOString()).lastInsertRowid));
    const goodId = Number(insert.run(1, 'session-state-changed', good, new Date(0).toISOString()).lastInsertRowid);
    db.close();

    const repo = await createPrismaRepository(file);
    try {
      for (const [i, [, , , message]] of damaged.entries()) {
        const read = repo.readOutbox(ids[i] - 1, 1);
        await expect(read).rejects.toMatchObject({ code: 'CORRUPT_RECORD' });
        await expect(read).rejects.toThrow(new RegExp(`outbox event ${ids[i]} is corrupt: .*${message.source}`));
      }
      expect(await repo.readOutbox(ids.at(-1)!, 10)).toEqual([{ id: goodId, event: stateChanged(1, 'running', 1000) }]);
    } finally {
      await repo.close();
    }
  });

  it('raises CORRUPT_RECORD for a session row whose config or state was damaged', async () => {
    const file = nextDbFile();
    const repo = await createPrismaRepository(file);
    const a = await repo.createSession(sampleConfig, 1000);
    const b = await repo.createSession(sampleConfig, 1000);
    await repo.close();
    const db = new Database(file);
    db.prepare('UPDATE "TrainingSession" SET "config" = ? WHERE "id" = ?').run('{"model":', a);
    db.prepare('UPDATE "TrainingSession" SET "state" = ? WHERE "id" = ?').run('exploded', b);
    db.close();
    const reopened = await createPrismaRepository(file);
    try {
      await expect(reopened.getSession(a)).rejects.toMatchObject({ code: 'CORRUPT_RECORD', message: expect.stringMatching(`session ${a} config is not JSON`) });
      await expect(reopened.getSession(b)).rejects.toMatchObject({ code: 'CORRUPT_RECORD' });
    } finally {
      await reopened.close();
    }
  });
});
