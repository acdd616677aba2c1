// Applies the committed Prisma migrations (prisma/migrations/<name>/migration.sql) with better-sqlite3.
// Why not `prisma migrate deploy`: Prisma 7's CLI needs a native schema engine for it, downloaded at first use,
// and this project must run offline. We keep Prisma's own bookkeeping table (`_prisma_migrations`, same
// columns, sha256 checksums of the files), so a machine that does have the engine can take over with
// `prisma migrate deploy` / `migrate status` on the same database.

import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';

export type MigrationLog = (message: string) => void;

/** Accepts a plain path or a Prisma-style `file:` URL (what DATABASE_URL holds). */
export function sqliteFilePath(dbFile: string): string {
  const path = dbFile.startsWith('file:') ? dbFile.slice('file:'.length) : dbFile;
  return path === ':memory:' ? path : resolve(path);
}

/** Opens the connection migrations run on. */
function openForMigration(dbFile: string): Database.Database {
  const path = sqliteFilePath(dbFile);
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  // The busy timeout lets a second process (or the Prisma connection) wait for the write lock instead of
  // failing at once with SQLITE_BUSY.
  const db = new Database(path, { timeout: 5_000 });
  // WAL lets readers (dashboard queries) proceed while a round is being written; it is a property of the
  // database file, so setting it here once covers the Prisma connection too.
  db.pragma('journal_mode = WAL');
  // Off while migrating, as SQLite's schema-change procedure asks: Prisma redefines a table by copying it,
  // dropping the old one and renaming, and with enforcement on, dropping a parent table would run its
  // ON DELETE CASCADE actions. The pragma is ignored inside a transaction, hence here; integrity is checked
  // with foreign_key_check before each migration commits.
  db.pragma('foreign_keys = OFF');
  return db;
}

// Prisma's own DDL for the table on SQLite (schema-engine sqlite connector), so its tooling recognises it.
const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
);`;

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: unknown;
  rolled_back_at: unknown;
}

interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Same comparison Prisma makes: a checkout that turned LF into CRLF is not a changed migration. */
function checksumMatches(file: MigrationFile, recorded: string): boolean {
  return file.checksum === recorded || sha256Hex(file.sql.replace(/\r\n/g, '\n')) === recorded;
}

function readMigrations(migrationsDir: string): MigrationFile[] {
  const dir = resolve(migrationsDir);
  if (!existsSync(dir)) throw new Error(`migrations folder ${dir} does not exist`);
  const lock = join(dir, 'migration_lock.toml');
  if (existsSync(lock)) {
    const provider = /provider\s*=\s*"([^"]+)"/.exec(readFileSync(lock, 'utf8'))?.[1];
    if (provider && provider !== 'sqlite') {
      throw new Error(`migrations in ${dir} are for ${provider}, not sqlite (see ${lock})`);
    }
  }
  return readdirSync(dir)
    .filter((name) => statSync(join(dir, name)).isDirectory() && existsSync(join(dir, name, 'migration.sql')))
    // Folder names start with a UTC timestamp, so name order is creation order (Prisma relies on the same).
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: sha256Hex(sql) };
    });
}

/**
 * Brings the database at `dbFile` up to date with the migration folders in `migrationsDir`. Creates the
 * parent directory and the database file when missing. Idempotent: applied migrations are skipped.
 * Each migration runs in its own transaction together with its `_prisma_migrations` row, so a failing
 * migration leaves no trace. Refuses to run when an applied migration's file was edited afterwards, or when
 * a migration is recorded as failed. Returns the names applied by this call.
 */
export function applyMigrations(dbFile: string, migrationsDir: string, log: MigrationLog = () => {}): string[] {
  const migrations = readMigrations(migrationsDir);
  const db = openForMigration(dbFile);
  try {
    db.exec(CREATE_MIGRATIONS_TABLE);
    const selectApplied = db.prepare<[], AppliedRow>(
      'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at, migration_name',
    );
    const insertApplied = db.prepare(
      `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
       VALUES (?, ?, ?, ?, NULL, NULL, ?, 1)`,
    );

    const appliedNow: string[] = [];
    for (const migration of migrations) {
      // BEGIN IMMEDIATE takes the write lock before we look, so two processes starting together cannot both
      // decide a migration is missing and apply it twice.
      const applyOne = db.transaction(() => {
        const rows = selectApplied.all().filter((row) => row.migration_name === migration.name);
        const failed = rows.find((row) => row.finished_at === null && row.rolled_back_at === null);
        if (failed) {
          throw new Error(
            `migration ${migration.name} is recorded as failed in _prisma_migrations; fix the database by hand and mark it rolled back before retrying`,
          );
        }
        const done = rows.find((row) => row.finished_at !== null && row.rolled_back_at === null);
        if (done) {
          if (!checksumMatches(migration, done.checksum)) {
            throw new Error(
              `migration ${migration.name} was modified after it was applied (checksum ${done.checksum} recorded, ` +
                `${migration.checksum} on disk); add a new migration instead of editing an applied one`,
            );
          }
          return false;
        }
        const startedAt = Date.now();
        try {
          db.exec(migration.sql);
        } catch (error) {
          throw new Error(`migration ${migration.name} failed: ${(error as Error).message}`, { cause: error });
        }
        const violations = db.pragma('foreign_key_check') as unknown[];
        if (violations.length > 0) {
          throw new Error(
            `migration ${migration.name} leaves ${violations.length} foreign key violation(s), first: ${JSON.stringify(violations[0])}`,
          );
        }
        // Epoch milliseconds, as Prisma's native engine writes them in SQLite databases we have seen; its tooling
        // only tests finished_at and rolled_back_at for NULL.
        insertApplied.run(randomUUID(), migration.checksum, Date.now(), migration.name, startedAt);
        return true;
      });
      if (applyOne.immediate()) {
        appliedNow.push(migration.name);
        log(`applied migration ${migration.name}`);
      }
    }

    const known = new Set(migrations.map((m) => m.name));
    for (const row of selectApplied.all()) {
      // A newer build may have migrated this database already; additive migrations keep older code working,
      // so warn rather than refuse.
      if (!known.has(row.migration_name) && row.rolled_back_at === null) {
        log(`warning: database has migration ${row.migration_name}, which is not in ${resolve(migrationsDir)}`);
      }
    }
    return appliedNow;
  } finally {
    db.close();
  }
}
