// The outbox: committed events written in the same batch transaction as the rows they describe, read in id
// order by consumers, each with its own durable cursor, and pruned from the front.

import type { CommittedEvent, OutboxRecord } from '../../core/engine/committed';
import type { TrainingRepository } from '../../core/ports';
import { Prisma } from './generated/client';
import { translate, type Db } from './client';
import { checkOutboxConsumer, checkOutboxPosition, checkOutboxRead, checkPruneUpTo, readOutboxRow } from './outbox-rules';

const outboxSelect = { id: true, sessionId: true, kind: true, payload: true } as const satisfies Prisma.OutboxEventSelect;

// 4 parameters a row: 4,000 per statement, well under SQLite's 32,766 and PostgreSQL's 65,535 bind limits.
const OUTBOX_ROWS_PER_INSERT = 1000;

/**
 * The multi-row INSERTs of `events` (already checked by storedOutboxEvents). A round credits every node that
 * contributed, so this is as hot as the contribution insert and takes the same shape: one statement for many
 * rows instead of Prisma's per-row work. RETURNING gives the ids without a second query.
 */
export function insertOutboxSql(events: readonly CommittedEvent[]): Prisma.Sql[] {
  // Wall clock of the writer: the column is for diagnosis only and no port method returns it.
  const createdAt = new Date();
  const statements: Prisma.Sql[] = [];
  for (let at = 0; at < events.length; at += OUTBOX_ROWS_PER_INSERT) {
    const values = events
      .slice(at, at + OUTBOX_ROWS_PER_INSERT)
      .map((event) => Prisma.sql`(${event.sessionId}, ${event.kind}, ${JSON.stringify(event)}, ${createdAt})`);
    statements.push(Prisma.sql`INSERT INTO "OutboxEvent" ("sessionId", "kind", "payload", "createdAt") VALUES ${Prisma.join(values)} RETURNING "id"`);
  }
  return statements;
}

/** The outbox records of `events` from the rows their INSERTs returned, in the order of `events`. */
export function outboxRecords(events: readonly CommittedEvent[], returned: readonly { id: number | bigint }[][], context: string): OutboxRecord[] {
  // One INSERT stores its VALUES in order and AUTOINCREMENT hands out increasing ids as it goes, and later
  // statements get higher ids still; RETURNING itself promises no order, so sort rather than trust it.
  const ids = returned.flatMap((rows) => rows.map((row) => Number(row.id))).sort((a, b) => a - b);
  if (ids.length !== events.length) throw new Error(`${context}: wrote ${events.length} outbox events but got ${ids.length} ids back`);
  return events.map((event, i) => ({ id: ids[i], event }));
}

/**
 * Runs `writes` and the outbox rows of `events` as ONE batch transaction (through the serial queue): either the
 * rows and their events are all there after a crash, or none are. Returns the results of `writes` and the
 * outbox records written, in the order of `events`. (The round's commit, the hot one, runs on the direct
 * connection instead: rounds.ts.)
 */
export async function commitWithOutbox(
  db: Pick<Db, 'prisma' | 'serial'>,
  writes: Prisma.PrismaPromise<unknown>[],
  events: CommittedEvent[],
  context: string,
): Promise<{ results: unknown[]; records: OutboxRecord[] }> {
  const inserts = insertOutboxSql(events).map((sql) => db.prisma.$queryRaw<{ id: number | bigint }[]>(sql));
  const results = await db.serial(() => db.prisma.$transaction([...writes, ...inserts]).catch((error: unknown) => translate(error, context)));
  return { results: results.slice(0, writes.length), records: outboxRecords(events, results.slice(writes.length) as { id: number | bigint }[][], context) };
}

type OutboxMethods = Pick<TrainingRepository, 'readOutbox' | 'outboxCursor' | 'saveOutboxCursor' | 'pruneOutbox'>;

export function createOutboxStore({ prisma, serial }: Db): OutboxMethods {
  return {
    async readOutbox(afterId, limit) {
      checkOutboxRead(afterId, limit);
      return serial(async () => {
        const rows = await prisma.outboxEvent.findMany({
          where: { id: { gt: afterId } },
          orderBy: { id: 'asc' },
          take: limit,
          select: outboxSelect,
        });
        return rows.map((row) => ({ id: row.id, event: readOutboxRow(row.id, row.sessionId, row.kind, row.payload) }));
      });
    },

    async outboxCursor(consumer) {
      checkOutboxConsumer(consumer);
      return serial(async () => {
        const row = await prisma.outboxCursor.findUnique({ where: { consumer }, select: { position: true } });
        return row?.position ?? 0;
      });
    },

    async saveOutboxCursor(consumer, position) {
      checkOutboxPosition(consumer, position);
      const updatedAt = new Date();
      await serial(() =>
        prisma.outboxCursor.upsert({
          where: { consumer },
          create: { consumer, position, updatedAt },
          update: { position, updatedAt },
          select: { consumer: true },
        }),
      );
    },

    async pruneOutbox(upToId) {
      checkPruneUpTo(upToId);
      return serial(async () => (await prisma.outboxEvent.deleteMany({ where: { id: { lte: upToId } } })).count);
    },
  };
}
