// Join tokens: operator-issued credentials that admit new agents. Only the sha256 of each secret is stored.

import type { JoinTokenRecord, TrainingRepository } from '../../core/ports';
import type { Db } from './client';
import { checkEpochMs, checkJoinToken, checkTokenHash } from './record-rules';

type JoinTokenMethods = Pick<TrainingRepository, 'createJoinToken' | 'joinTokenByHash' | 'listJoinTokens' | 'revokeJoinToken'>;

const select = { id: true, label: true, nodeName: true, createdAt: true, expiresAt: true, revokedAt: true } as const;

type Row = { id: number; label: string; nodeName: string | null; createdAt: Date; expiresAt: Date | null; revokedAt: Date | null };

function toRecord(row: Row): JoinTokenRecord {
  return {
    id: row.id,
    label: row.label,
    nodeName: row.nodeName,
    createdAt: row.createdAt.getTime(),
    expiresAt: row.expiresAt ? row.expiresAt.getTime() : null,
    revokedAt: row.revokedAt ? row.revokedAt.getTime() : null,
  };
}

export function createJoinTokenStore({ prisma, serial }: Db): JoinTokenMethods {
  return {
    async createJoinToken(token) {
      checkJoinToken(token);
      return serial(async () => {
        const row = await prisma.joinToken.create({
          data: {
            tokenHash: token.tokenHash,
            label: token.label,
            nodeName: token.nodeName,
            createdAt: new Date(token.createdAt),
            expiresAt: token.expiresAt === null ? null : new Date(token.expiresAt),
          },
          select,
        });
        return toRecord(row);
      });
    },

    async joinTokenByHash(tokenHash) {
      checkTokenHash('join token', tokenHash);
      return serial(async () => {
        const row = await prisma.joinToken.findUnique({ where: { tokenHash }, select });
        return row ? toRecord(row) : null;
      });
    },

    async listJoinTokens() {
      return serial(async () => (await prisma.joinToken.findMany({ orderBy: { id: 'asc' }, select })).map(toRecord));
    },

    async revokeJoinToken(id, revokedAt) {
      checkEpochMs('join token revokedAt', revokedAt);
      return serial(async () => {
        // Only a token not yet revoked gets the time: revoking twice keeps the first.
        await prisma.joinToken.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: new Date(revokedAt) } });
        const row = await prisma.joinToken.findUnique({ where: { id }, select });
        return row ? toRecord(row) : null;
      });
    },
  };
}
