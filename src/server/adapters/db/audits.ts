// The audit ledger (AuditStore): audit rows, per-epoch forfeits and the epoch marker, the epoch-audited event
// written in the same transaction as its forfeits, and the reads a node's "why did I earn this" timeline needs.

import { HyperGpuError } from '../../../protocol/errors';
import type { AuditRecord, AuditState, AuditStore, ForfeitRecord } from '../../core/audit-ports';
import type { ContributionRecord } from '../../core/types';
import { Prisma } from './generated/client';
import { ms, msOrNull, translate, type Db } from './client';
import { eventSelect, toEvent } from './events';
import { commitWithOutbox } from './outbox';
import { storedOutboxEvents } from './outbox-rules';
import { appliedSelect, rejectedSelect, toContribution } from './rounds';

const auditSelect = {
  sessionId: true,
  epoch: true,
  round: true,
  nodeId: true,
  attempt: true,
  modelVersion: true,
  shardStart: true,
  shardCount: true,
  outcome: true,
  selectedBy: true,
  relativeError: true,
  cosine: true,
  tolerance: true,
  detail: true,
  selectedAt: true,
  resolvedAt: true,
} as const satisfies Prisma.AuditSelect;

type AuditRow = Prisma.AuditGetPayload<{ select: typeof auditSelect }>;

const OUTCOMES: readonly AuditState[] = ['pending', 'pass', 'fail', 'error'];
const SELECTED_BY: readonly AuditRecord['selectedBy'][] = ['reservoir', 'sampled', 'reservoir+sampled', 'unrecoverable'];

function toAudit(row: AuditRow): AuditRecord {
  if (!OUTCOMES.includes(row.outcome as AuditState) || !SELECTED_BY.includes(row.selectedBy as AuditRecord['selectedBy'])) {
    throw new HyperGpuError('CORRUPT_RECORD', `audit of session ${row.sessionId} round ${row.round} node ${row.nodeId} has outcome ${row.outcome} / selectedBy ${row.selectedBy}`);
  }
  return {
    ...row,
    outcome: row.outcome as AuditState,
    selectedBy: row.selectedBy as AuditRecord['selectedBy'],
    selectedAt: ms(row.selectedAt),
    resolvedAt: msOrNull(row.resolvedAt),
  };
}

const UNBOUNDED = 1e300;

function finiteOrNull(value: number | null): number | null {
  // JSON cannot carry Infinity (nor does the driver read back the largest double: its text form overflows), so
  // an unbounded error is kept as 1e300: still a failure above any tolerance, and finite everywhere it goes.
  if (value === null || Number.isNaN(value)) return null;
  return Number.isFinite(value) ? Math.max(-UNBOUNDED, Math.min(UNBOUNDED, value)) : value > 0 ? UNBOUNDED : -UNBOUNDED;
}

export function createAuditStore({ prisma, serial }: Db): AuditStore {
  return {
    async recordAuditSelected(a) {
      await serial(() =>
        prisma.audit
          .upsert({
            where: { sessionId_round_nodeId: { sessionId: a.sessionId, round: a.round, nodeId: a.nodeId } },
            create: {
              ...a,
              relativeError: finiteOrNull(a.relativeError),
              cosine: finiteOrNull(a.cosine),
              selectedAt: new Date(a.selectedAt),
              resolvedAt: a.resolvedAt === null ? null : new Date(a.resolvedAt),
            },
            update: {},
            select: { id: true },
          })
          .catch((error: unknown) => translate(error, `audit of session ${a.sessionId} round ${a.round} node ${a.nodeId}`)),
      );
    },

    async resolveAudit(sessionId, round, nodeId, r) {
      await serial(() =>
        prisma.audit
          .update({
            where: { sessionId_round_nodeId: { sessionId, round, nodeId } },
            data: { outcome: r.outcome, relativeError: finiteOrNull(r.relativeError), cosine: finiteOrNull(r.cosine), detail: r.detail, resolvedAt: new Date(r.resolvedAt) },
            select: { id: true },
          })
          .catch((error: unknown) => translate(error, `resolve the audit of session ${sessionId} round ${round} node ${nodeId}`)),
      );
    },

    async listAudits(sessionId, epoch) {
      return serial(async () => {
        const rows = await prisma.audit.findMany({ where: { sessionId, epoch }, orderBy: [{ round: 'asc' }, { nodeId: 'asc' }], select: auditSelect });
        return rows.map(toAudit);
      });
    },

    async isEpochAudited(sessionId, epoch) {
      return serial(async () => (await prisma.epochAudit.findUnique({ where: { sessionId_epoch: { sessionId, epoch } }, select: { epoch: true } })) !== null);
    },

    async epochContributions(sessionId, epoch) {
      return serial(async () => {
        const rows = await prisma.contribution.findMany({ where: { sessionId, epoch }, orderBy: [{ round: 'asc' }, { nodeId: 'asc' }], select: appliedSelect });
        return rows.map(toContribution);
      });
    },

    async roundModelVersions(sessionId, rounds) {
      return serial(async () => {
        const rows = await prisma.round.findMany({ where: { sessionId, round: { in: rounds } }, select: { round: true, modelVersion: true, applied: true } });
        return new Map(rows.map((r) => [r.round, r.applied ? r.modelVersion - 1 : r.modelVersion]));
      });
    },

    async commitEpochAudit({ sessionId, epoch, audits, forfeits, at, event }) {
      const events = storedOutboxEvents([event]);
      const when = new Date(at);
      const writes: Prisma.PrismaPromise<unknown>[] = [
        prisma.epochAudit.create({ data: { sessionId, epoch, audits, forfeited: forfeits.length, at: when }, select: { epoch: true } }),
        ...forfeits.map((f: ForfeitRecord) =>
          prisma.epochForfeit.create({ data: { sessionId: f.sessionId, epoch: f.epoch, nodeId: f.nodeId, reason: f.reason, at: new Date(f.at) }, select: { id: true } }),
        ),
      ];
      const { records } = await commitWithOutbox({ prisma, serial }, writes, events, `epoch ${epoch} audit of session ${sessionId}`);
      return records;
    },

    async listForfeits(sessionId) {
      return serial(async () => {
        const rows = await prisma.epochForfeit.findMany({ where: { sessionId }, orderBy: { id: 'asc' }, select: { sessionId: true, epoch: true, nodeId: true, reason: true, at: true } });
        return rows.map((f) => ({ ...f, at: ms(f.at) }));
      });
    },

    async nodeLedger(idOrName, limitRounds) {
      return serial(async () => {
        const node = await prisma.node.findFirst({
          where: typeof idOrName === 'number' ? { id: idOrName } : { name: idOrName },
          select: { id: true, name: true, firstSeenAt: true, lastSeenAt: true },
        });
        if (!node) return null;
        const nodeId = node.id;
        const [applied, rejected, audits, forfeits, events] = await prisma.$transaction([
          prisma.contribution.findMany({ where: { nodeId }, orderBy: { id: 'desc' }, take: limitRounds, select: appliedSelect }),
          prisma.rejectedUpdate.findMany({ where: { nodeId }, orderBy: { id: 'desc' }, take: limitRounds, select: rejectedSelect }),
          prisma.audit.findMany({ where: { nodeId }, orderBy: { id: 'desc' }, take: limitRounds, select: auditSelect }),
          prisma.epochForfeit.findMany({ where: { nodeId }, orderBy: { id: 'asc' }, select: { sessionId: true, epoch: true, nodeId: true, reason: true, at: true } }),
          prisma.sessionEvent.findMany({ where: { nodeId }, orderBy: { id: 'desc' }, take: limitRounds, select: eventSelect }),
        ]);
        const contributions: ContributionRecord[] = [...applied.map(toContribution), ...rejected.map(toContribution)].sort((a, b) => a.sessionId - b.sessionId || a.round - b.round);
        return {
          node: { id: node.id, name: node.name, firstSeenAt: ms(node.firstSeenAt), lastSeenAt: ms(node.lastSeenAt) },
          contributions,
          audits: audits.map(toAudit).reverse(),
          forfeits: forfeits.map((f) => ({ ...f, at: ms(f.at) })),
          events: events.map(toEvent).reverse(),
        };
      });
    },
  };
}
