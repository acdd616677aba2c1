// TrainingRepository on Prisma 7 + SQLite (better-sqlite3 driver adapter), composed of one module per aggregate:
// sessions, nodes, rounds (with contributions, rejections, metrics), the timeline, checkpoints and the outbox.
// These modules are the only code that touches the generated client: explicit selects, rows mapped to domain
// types (epoch ms numbers, plain numbers for BigInt columns), Prisma errors translated to coded HyperGpuErrors
// (client.ts), and every call run one at a time on the one connection.

import type { AuditStore } from '../../core/audit-ports';
import type { TrainingRepository } from '../../core/ports';
import { createAuditStore } from './audits';
import type { RewardsRepository } from '../../core/rewards/ports';
import { createCheckpointStore } from './checkpoints';
import { openDb, type PrismaRepositoryOptions } from './client';
import { createEventStore } from './events';
import { createJoinTokenStore } from './join-tokens';
import { createNodeStore } from './nodes';
import { createOutboxStore } from './outbox';
import { createRewardsStore } from './rewards';
import { createRoundStore } from './rounds';
import { createSessionStore } from './sessions';

export { defaultMigrationsDir, type PrismaRepositoryOptions } from './client';

/**
 * Opens (creating and migrating when needed) the SQLite database at `dbFile` (a path or a `file:` URL).
 * The repository holds two connections (Prisma's, and the direct one the round's commit runs on); close()
 * releases both.
 */
export async function createPrismaRepository(dbFile: string, options: PrismaRepositoryOptions = {}): Promise<TrainingRepository & AuditStore & RewardsRepository> {
  const db = await openDb(dbFile, options);
  return {
    ...createSessionStore(db),
    ...createNodeStore(db),
    ...createJoinTokenStore(db),
    ...createRoundStore(db),
    ...createEventStore(db),
    ...createCheckpointStore(db),
    ...createOutboxStore(db),
    ...createAuditStore(db),
    ...createRewardsStore(db),
    async close() {
      return db.serial(async () => {
        db.direct.close();
        await db.prisma.$disconnect();
      });
    },
  };
}
