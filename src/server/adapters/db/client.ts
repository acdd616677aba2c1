// The Prisma side every repository module shares: opening the client on a migrated SQLite file, the queue
// that runs calls one at a time, Prisma errors translated to coded HyperGpuErrors, and date helpers.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { HyperGpuError } from '../../../protocol/errors';
import { Prisma, PrismaClient } from './generated/client';
import { DirectSql } from './direct-sql';
import { constraintError, type ConstraintKind } from './constraint-error';
import { applyMigrations, sqliteFilePath, type MigrationLog } from './migrate';

export interface PrismaRepositoryOptions {
  /** Folder of Prisma migration folders; defaults to the repository's prisma/migrations. */
  migrationsDir?: string;
  log?: MigrationLog;
  /**
   * SQLite's `synchronous` on the coordinator's connection. FULL (the default) syncs the WAL at every commit,
   * so a committed round survives a power cut, not only a process crash; NORMAL may lose the last commits
   * to a power cut (never corrupts). Only benchmarks ask for NORMAL, to measure what FULL costs.
   */
  synchronous?: 'FULL' | 'NORMAL';
}

/**
 * Entries in each of Prisma's two query plan caches (LRU, one for single queries, one for batch transactions).
 * Prisma's default is 1,000, and with it the coordinator's heap grew for the first 1,000 rounds of every session
 * (issue 9, the soak): a batch that mixes model queries with raw multi-row INSERTs (contributions, outbox events)
 * is compiled as a whole with the raw values in its cache key, so each such batch compiles a plan no later one can
 * use: about 32 KB each with 2 nodes, about 215 KB with 100. The round's commit no longer does (it is all raw,
 * which Prisma runs without compiling: round-commit-sql.ts); the batches that still mix are rare (a round with
 * rejections, a session state change, an epoch's audit), and the bound keeps what they leave small.
 * Single queries are parameterized and few (about 50 shapes in a session with audits and settlement, counted in
 * a heap snapshot): 64 keeps them all.
 * Not 0: without the cache every single query compiles its plan again (measured 2-4x slower reads).
 */
export const QUERY_PLAN_CACHE_ENTRIES = 64;

/**
 * What each aggregate's module works with: the client, the direct connection the round's commit runs on
 * (direct-sql.ts), and the queue every call on either goes through.
 */
export interface Db {
  prisma: PrismaClient;
  direct: DirectSql;
  serial<T>(work: () => Promise<T>): Promise<T>;
}

/** prisma/migrations next to the sources; falls back to the working directory (e.g. in a bundled build). */
export function defaultMigrationsDir(): string {
  const besideSources = fileURLToPath(new URL('../../../../prisma/migrations', import.meta.url));
  return existsSync(besideSources) ? besideSources : join(process.cwd(), 'prisma', 'migrations');
}

/**
 * Opens (creating and migrating when needed) the SQLite database at `dbFile` (a path or a `file:` URL) on one
 * connection.
 */
export async function openDb(dbFile: string, options: PrismaRepositoryOptions = {}): Promise<Db> {
  const path = sqliteFilePath(dbFile);
  // Migrations and Prisma use separate connections, and two connections to ':memory:' are two databases.
  if (path === ':memory:') throw new Error('createPrismaRepository needs a database file; use the fake repository for in-memory tests');
  applyMigrations(path, options.migrationsDir ?? defaultMigrationsDir(), options.log);
  // better-sqlite3's own busy timeout (ms): wait for another process's write lock rather than fail.
  const prisma = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: path, timeout: 5_000 }), queryPlanCacheMaxSize: QUERY_PLAN_CACHE_ENTRIES });
  await prisma.$connect();
  // Per connection, so set here on Prisma's own. With WAL, FULL adds one fsync of the WAL per transaction:
  // the round's commit is then durable when recordRound resolves, as the journal entry before it already is
  // (checkpoint rows and journal compaction rely on the same). Measured in bench/commit-durability.ts.
  const synchronous = options.synchronous ?? 'FULL';
  await prisma.$queryRawUnsafe(`PRAGMA synchronous = ${synchronous}`);

  // The adapter runs everything on one better-sqlite3 connection and its plain queries skip the mutex its
  // transactions take, so a call arriving while another call's transaction is open could run inside it and be
  // rolled back with it (a rejection recorded while a duplicate round fails would vanish). Prisma 7.10's batch
  // transactions did not show it in our tests, but nothing guarantees that. Running calls one at a time closes
  // the gap at no real cost: SQLite has a single writer and better-sqlite3 is synchronous anyway.
  let tail: Promise<unknown> = Promise.resolve();
  function serial<T>(work: () => Promise<T>): Promise<T> {
    const run = tail.then(work, work);
    tail = run.catch(() => undefined);
    return run;
  }
  const direct = new DirectSql(path, { synchronous, busyTimeoutMs: 5_000 });
  return { prisma, direct, serial };
}

export const ms = (date: Date): number => date.getTime();
export const msOrNull = (date: Date | null): number | null => (date === null ? null : date.getTime());

/** A stored row that does not hold what its writer checked: found where it is read, with its ids. */
export function corrupt(message: string): never {
  throw new HyperGpuError('CORRUPT_RECORD', message);
}

/** Parses a JSON text column; a damaged one is a coded CORRUPT_RECORD naming the row, not a bare SyntaxError. */
export function storedJson(what: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    return corrupt(`${what} is not JSON (${(error as Error).message})`);
  }
}


interface DriverAdapterMeta {
  target?: unknown;
  driverAdapterError?: { cause?: { kind?: string; constraint?: { fields?: string[] } } };
}

/** Model calls report P2002/P2003/P2025; raw SQL reports P2010 with the driver adapter's portable kind. */
function constraintKind(error: Prisma.PrismaClientKnownRequestError): ConstraintKind | null {
  const kind = (error.meta as DriverAdapterMeta | undefined)?.driverAdapterError?.cause?.kind;
  if (error.code === 'P2002' || kind === 'UniqueConstraintViolation') return 'unique';
  if (error.code === 'P2003' || kind === 'ForeignKeyConstraintViolation') return 'foreignKey';
  if (error.code === 'P2025') return 'notFound';
  return null;
}

function uniqueTarget(error: Prisma.PrismaClientKnownRequestError): string {
  const meta = error.meta as DriverAdapterMeta | undefined;
  const fields = meta?.driverAdapterError?.cause?.constraint?.fields ?? meta?.target;
  return Array.isArray(fields) ? `unique on ${fields.join(', ')}` : 'unique constraint';
}

/** Turns constraint failures into coded errors with ids in the message; anything else passes through. */
export function translate(error: unknown, context: string): never {
  if (error instanceof Prisma.PrismaClientKnownRequestError) {
    const kind = constraintKind(error);
    if (kind) throw constraintError(kind, context, error, kind === 'unique' ? uniqueTarget(error) : undefined);
  }
  throw error;
}
