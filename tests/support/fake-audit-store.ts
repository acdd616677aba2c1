// In-memory AuditStore for unit tests of the audit service: the same rules the Prisma store keeps (an audit
// recorded once per update, one epoch-audited commit per epoch) over plain arrays.
import type { AuditRecord, AuditStore, ForfeitRecord } from '../../src/server/core/audit-ports';
import type { CommittedEvent, OutboxRecord } from '../../src/server/core/engine/committed';
import type { ContributionRecord } from '../../src/server/core/types';
import { NodeTimelines } from '../../src/server/services/node-timelines';

/** Timelines over a fake store that knows node 1 ('node-1'), for the API tests. */
export function fakeTimelines(): NodeTimelines {
  const store = new FakeAuditStore();
  store.nodes.push({ id: 1, name: 'node-1', firstSeenAt: 1, lastSeenAt: 2 });
  return new NodeTimelines(store);
}

export class FakeAuditStore implements AuditStore {
  audits: AuditRecord[] = [];
  forfeits: ForfeitRecord[] = [];
  marks: { sessionId: number; epoch: number; audits: number; forfeited: number }[] = [];
  outbox: CommittedEvent[] = [];
  contributions: ContributionRecord[] = [];
  versions = new Map<number, number>();

  async recordAuditSelected(a: AuditRecord) {
    if (this.audits.some((x) => x.sessionId === a.sessionId && x.round === a.round && x.nodeId === a.nodeId)) return;
    this.audits.push({ ...a });
  }
  async resolveAudit(sessionId: number, round: number, nodeId: number, r: Parameters<AuditStore['resolveAudit']>[3]) {
    const a = this.audits.find((x) => x.sessionId === sessionId && x.round === round && x.nodeId === nodeId);
    if (!a) throw new Error(`no audit of round ${round} node ${nodeId}`);
    Object.assign(a, r);
  }
  async listAudits(sessionId: number, epoch: number) {
    return this.audits.filter((a) => a.sessionId === sessionId && a.epoch === epoch).sort((a, b) => a.round - b.round || a.nodeId - b.nodeId).map((a) => ({ ...a }));
  }
  async isEpochAudited(sessionId: number, epoch: number) {
    return this.marks.some((m) => m.sessionId === sessionId && m.epoch === epoch);
  }
  async epochContributions(sessionId: number, epoch: number) {
    return this.contributions.filter((c) => c.sessionId === sessionId && c.epoch === epoch && c.status === 'applied');
  }
  async roundModelVersions(_sessionId: number, rounds: number[]) {
    return new Map(rounds.map((r) => [r, this.versions.get(r) ?? r - 1]));
  }
  async commitEpochAudit(input: Parameters<AuditStore['commitEpochAudit']>[0]): Promise<OutboxRecord[]> {
    if (await this.isEpochAudited(input.sessionId, input.epoch)) throw new Error(`epoch ${input.epoch} audited twice`);
    this.marks.push({ sessionId: input.sessionId, epoch: input.epoch, audits: input.audits, forfeited: input.forfeits.length });
    this.forfeits.push(...input.forfeits);
    this.outbox.push(input.event);
    return [{ id: this.outbox.length, event: input.event }];
  }
  async listForfeits(sessionId: number) {
    return this.forfeits.filter((f) => f.sessionId === sessionId);
  }

  nodes: { id: number; name: string; firstSeenAt: number; lastSeenAt: number }[] = [];

  async nodeLedger(idOrName: number | string) {
    const node = this.nodes.find((n) => n.id === idOrName || n.name === idOrName);
    if (!node) return null;
    return {
      node,
      contributions: this.contributions.filter((c) => c.nodeId === node.id),
      audits: this.audits.filter((a) => a.nodeId === node.id),
      forfeits: this.forfeits.filter((f) => f.nodeId === node.id),
      events: [],
    };
  }
}
