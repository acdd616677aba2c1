// A second connection to the coordinator's SQLite file, for the one write every round makes: the round's commit
// (round-commit-sql.ts). Prisma 7 runs even an all-raw batch transaction through its client pipeline in
// JavaScript (request, batch, interpreter, adapter), and on the coordinator's event loop that cost more than
// SQLite itself: with 2 agents training an MLP at 14 rounds/s, a CPU profile of the server counted about 4 ms of
// Prisma client work per round, the largest single share of the time API requests waited for the loop (issue 9,
// target 4). Here the same statements, built with Prisma.sql and bound the way Prisma's better-sqlite3 adapter
// binds them (dates as its ISO text, booleans as 0/1, BigInts as INTEGER), run as one better-sqlite3
// transaction: prepared once, cached, no client pipeline.
//
// Both connections write the same file, so every write still goes through the repository's serial queue: the
// two never hold SQLite's write lock at once within this process (another process waits on the busy timeout,
// as it does for Prisma's connection). Readers on Prisma's connection see a commit made here as soon as it
// returns (WAL: each read transaction starts at the latest commit).
import Database from 'better-sqlite3';
import { constraintError } from './constraint-error';
import type { Prisma } from './generated/client';

/** One statement of a direct transaction; `returning` statements give their rows back (INSERT ... RETURNING). */
export interface DirectStatement {
  sql: Prisma.Sql;
  returning?: boolean;
}

/**
 * Prepared statements kept. The multi-row INSERTs have one text per row count, and a prepared 100-row contribution
 * INSERT holds about 160 KB (measured: 60 of them, 9.4 MB), so with 100 nodes whose count varies from round to
 * round a large cache filled with shapes never used again (128 entries: about 20 MB more at the memory benchmark's
 * 100 nodes). A round uses about 5 shapes; 16 keeps the last rounds' and bounds the rest.
 */
const STATEMENT_CACHE_ENTRIES = 16;

export class DirectSql {
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(path: string, options: { synchronous: 'FULL' | 'NORMAL'; busyTimeoutMs: number }) {
    this.db = new Database(path, { timeout: options.busyTimeoutMs });
    // Per connection: the same durability as Prisma's connection, and the foreign keys the commit relies on
    // (a round row of a missing session fails the whole transaction).
    this.db.pragma(`synchronous = ${options.synchronous}`);
    this.db.pragma('foreign_keys = ON');
  }

  /**
   * Runs `statements` in ONE immediate transaction: all or nothing. Returns, per statement, its rows when it
   * is `returning`, else the number of rows it changed. Constraint failures become the coded errors Prisma's
   * path gives (translateSqliteError); anything else (SQLITE_BUSY past the busy timeout, I/O) passes through.
   */
  transaction(statements: DirectStatement[], context: string): unknown[] {
    const run = this.db.transaction(() =>
      statements.map(({ sql, returning }) => {
        const statement = this.prepare(sql.sql);
        const values = sql.values.map(driverValue);
        return returning ? statement.all(...values) : statement.run(...values).changes;
      }),
    );
    try {
      return run.immediate();
    } catch (error) {
      return translateSqliteError(error, context);
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private prepare(text: string): Database.Statement {
    let statement = this.statements.get(text);
    if (statement) {
      // Most recently used last: the first entry is the one to evict.
      this.statements.delete(text);
    } else {
      statement = this.db.prepare(text);
      if (this.statements.size >= STATEMENT_CACHE_ENTRIES) this.statements.delete(this.statements.keys().next().value!);
    }
    this.statements.set(text, statement);
    return statement;
  }
}

/**
 * A value as Prisma's better-sqlite3 adapter binds it (its default timestampFormat, iso8601), so rows written here
 * read back through Prisma exactly like rows Prisma wrote; the repository conformance suite reads every column.
 */
export function driverValue(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString().replace('Z', '+00:00');
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}

/** The coded errors of client.ts's translate() (constraintError), from better-sqlite3's error codes. */
export function translateSqliteError(error: unknown, context: string): never {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    // "UNIQUE constraint failed: Round.sessionId, Round.round"
    const message = error instanceof Error ? error.message : '';
    const columns = message.split('constraint failed: ')[1]?.split(', ').map((column) => column.split('.').pop());
    throw constraintError('unique', context, error, columns ? `unique on ${columns.join(', ')}` : undefined);
  }
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw constraintError('foreignKey', context, error);
  throw error;
}
