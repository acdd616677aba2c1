// Nodes: registration (idempotent on name) and the credential a node proves its name with.

import { HyperGpuError } from '../../../protocol/errors';
import type { TrainingRepository } from '../../core/ports';
import type { Db } from './client';
import { checkNode } from './record-rules';

type NodeMethods = Pick<TrainingRepository, 'upsertNode' | 'nodeCredential' | 'setNodeTokenHash' | 'pruneIdleNodes'>;

export function createNodeStore({ prisma, serial }: Db): NodeMethods {
  return {
    async upsertNode(name, capabilities, seenAt) {
      checkNode(name, capabilities, seenAt);
      const caps = {
        backend: capabilities.backend,
        device: capabilities.device,
        samplesPerSecond: capabilities.samplesPerSecond,
        agentVersion: capabilities.agentVersion,
        hostname: capabilities.hostname,
      };
      return serial(async () => {
        const row = await prisma.node.upsert({
          where: { name },
          create: { name, ...caps, firstSeenAt: new Date(seenAt), lastSeenAt: new Date(seenAt) },
          update: { ...caps, lastSeenAt: new Date(seenAt) },
          select: { id: true },
        });
        return row.id;
      });
    },

    async nodeCredential(name) {
      // Through the queue like every other call: a read issued while another call's transaction is open must
      // not run inside it (and see rows that may yet be rolled back).
      return serial(async () => {
        const row = await prisma.node.findUnique({ where: { name }, select: { id: true, tokenHash: true } });
        return row ? { id: row.id, tokenHash: row.tokenHash } : null;
      });
    },

    async setNodeTokenHash(id, tokenHash) {
      if (!/^[0-9a-f]{64}$/.test(tokenHash)) throw new HyperGpuError('BAD_REQUEST', `node ${id} token hash must be 64 lowercase hex digits`);
      return serial(async () => {
        // Conditional on the hash being unset: one UPDATE ... WHERE tokenHash IS NULL, so of two registrations
        // racing for a new name only the first is given the name (the caller refuses the other).
        const updated = await prisma.node.updateMany({ where: { id, tokenHash: null }, data: { tokenHash } });
        if (updated.count === 1) return true;
        const exists = await prisma.node.count({ where: { id } });
        if (exists === 0) throw new HyperGpuError('NOT_FOUND', `node ${id} does not exist`);
        return false;
      });
    },

    async pruneIdleNodes(seenBefore) {
      return serial(async () => {
        const deleted = await prisma.node.deleteMany({
          where: { lastSeenAt: { lt: new Date(seenBefore) }, contributions: { none: {} }, rejectedUpdates: { none: {} } },
        });
        return deleted.count;
      });
    },
  };
}
