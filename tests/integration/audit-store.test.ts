// The audit ledger on a real SQLite file: an audit recorded once per update, resolved in place; the epoch's
// marker, forfeits and epoch-audited event committed together and only once; a node's ledger by id or name.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPrismaRepository } from '../../src/server/adapters/db/prisma-repository';
import type { AuditRecord } from '../../src/server/core/audit-ports';
import { sampleCapabilities, sampleConfig } from '../support/repository-conformance';

const dir = mkdtempSync(join(tmpdir(), 'hypergpu-audit-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const audit = (over: Partial<AuditRecord> = {}): AuditRecord => ({
  sessionId: 1, epoch: 0, round: 3, nodeId: 1, attempt: 1, modelVersion: 2, shardStart: 64, shardCount: 32, outcome: 'pending',
  selectedBy: 'reservoir', relativeError: null, cosine: null, tolerance: 1e-3, detail: null, selectedAt: 1000, resolvedAt: null, ...over,
});

describe('audit store (prisma + sqlite)', () => {
  it('records, resolves, lists, commits an epoch once, and reads a node’s ledger', async () => {
    const repo = await createPrismaRepository(join(dir, 'a.db'));
    try {
      const sessionId = await repo.createSession(sampleConfig, 1000);
      const nodeId = await repo.upsertNode('alpha', sampleCapabilities(), 1000);
      await repo.recordAuditSelected(audit({ sessionId, nodeId }));
      await repo.recordAuditSelected(audit({ sessionId, nodeId, outcome: 'pass' })); // the same update again: a no-op
      expect(await repo.listAudits(sessionId, 0)).toEqual([audit({ sessionId, nodeId })]);
      await repo.resolveAudit(sessionId, 3, nodeId, { outcome: 'fail', relativeError: Number.POSITIVE_INFINITY, cosine: Number.NaN, detail: 'differs', resolvedAt: 2000 });
      const [resolved] = await repo.listAudits(sessionId, 0);
      // JSON cannot carry Infinity or NaN: 1e300 and null, still a failure above any tolerance.
      expect(resolved).toMatchObject({ outcome: 'fail', relativeError: 1e300, cosine: null, detail: 'differs', resolvedAt: 2000 });
      await expect(repo.resolveAudit(sessionId, 99, nodeId, { outcome: 'pass', relativeError: 0, cosine: 1, detail: null, resolvedAt: 1 })).rejects.toMatchObject({ code: 'NOT_FOUND' });

      expect(await repo.isEpochAudited(sessionId, 0)).toBe(false);
      const event = { kind: 'epoch-audited' as const, sessionId, epoch: 0, forfeitedNodeIds: [nodeId] };
      const forfeits = [{ sessionId, epoch: 0, nodeId, reason: 'AUDIT_FAILED: epoch 0 credit forfeited', at: 3000 }];
      const records = await repo.commitEpochAudit({ sessionId, epoch: 0, audits: 1, forfeits, at: 3000, event });
      expect(records.map((r) => r.event)).toEqual([event]);
      expect(await repo.readOutbox(0, 100)).toEqual(records);
      expect(await repo.isEpochAudited(sessionId, 0)).toBe(true);
      // A second commit of the same epoch fails whole: no second forfeit row, no second event.
      await expect(repo.commitEpochAudit({ sessionId, epoch: 0, audits: 1, forfeits, at: 4000, event })).rejects.toMatchObject({ code: 'CONFLICT' });
      expect(await repo.readOutbox(0, 100)).toEqual(records);

      const byName = await repo.nodeLedger('alpha', 100);
      const byId = await repo.nodeLedger(nodeId, 100);
      expect(byName).toEqual(byId);
      expect(byName!.node).toMatchObject({ id: nodeId, name: 'alpha' });
      expect(byName!.forfeits).toEqual(forfeits);
      expect(byName!.audits).toHaveLength(1);
      expect(await repo.nodeLedger('nobody', 100)).toBeNull();
      expect(await repo.nodeLedger(12345, 100)).toBeNull();
    } finally {
      await repo.close();
    }
  });
});
