// Checkpoint rows: the hash and path of a model file per round (the file itself lives in the checkpoint store).

import type { TrainingRepository } from '../../core/ports';
import type { CheckpointRecord } from '../../core/types';
import type { Prisma } from './generated/client';
import { ms, translate, type Db } from './client';
import { checkCheckpoint } from './record-rules';

const checkpointSelect = {
  sessionId: true,
  round: true,
  modelVersion: true,
  sha256: true,
  path: true,
  bytes: true,
  createdAt: true,
} as const satisfies Prisma.CheckpointSelect;

type CheckpointRow = Prisma.CheckpointGetPayload<{ select: typeof checkpointSelect }>;

function toCheckpoint(row: CheckpointRow): CheckpointRecord {
  return {
    sessionId: row.sessionId,
    round: row.round,
    modelVersion: row.modelVersion,
    sha256: row.sha256,
    path: row.path,
    bytes: Number(row.bytes),
    createdAt: ms(row.createdAt),
  };
}

type CheckpointMethods = Pick<TrainingRepository, 'recordCheckpoint' | 'latestCheckpoint' | 'listCheckpoints' | 'deleteCheckpointsBefore'>;

export function createCheckpointStore({ prisma, serial }: Db): CheckpointMethods {
  return {
    async recordCheckpoint(checkpoint) {
      checkCheckpoint(checkpoint);
      const { sessionId, round, sha256 } = checkpoint;
      await serial(() =>
        prisma.checkpoint
          .upsert({
            where: { sessionId_round_sha256: { sessionId, round, sha256 } },
            create: {
              sessionId,
              round,
              sha256,
              modelVersion: checkpoint.modelVersion,
              path: checkpoint.path,
              bytes: BigInt(checkpoint.bytes),
              createdAt: new Date(checkpoint.createdAt),
            },
            // Same content for the same round is the same checkpoint: recording it again changes nothing.
            update: {},
            select: { id: true },
          })
          .catch((error: unknown) => translate(error, `session ${sessionId} round ${round} checkpoint`)),
      );
    },

    async latestCheckpoint(sessionId) {
      return serial(async () => {
        const row = await prisma.checkpoint.findFirst({
          where: { sessionId },
          orderBy: [{ round: 'desc' }, { id: 'desc' }],
          select: checkpointSelect,
        });
        return row ? toCheckpoint(row) : null;
      });
    },

    async listCheckpoints(sessionId) {
      return serial(async () => {
        const rows = await prisma.checkpoint.findMany({
          where: { sessionId },
          orderBy: [{ round: 'asc' }, { id: 'asc' }],
          select: checkpointSelect,
        });
        return rows.map(toCheckpoint);
      });
    },

    async deleteCheckpointsBefore(sessionId, beforeRound) {
      const where = { sessionId, round: { lt: beforeRound } };
      // One transaction: the rows returned are exactly the rows deleted.
      const [rows] = await serial(() =>
        prisma.$transaction([
          prisma.checkpoint.findMany({ where, orderBy: [{ round: 'asc' }, { id: 'asc' }], select: checkpointSelect }),
          prisma.checkpoint.deleteMany({ where }),
        ]),
      );
      return rows.map(toCheckpoint);
    },
  };
}
