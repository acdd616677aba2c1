// "Why did I earn this": a node's ledger rows (contributions, rejections, audits, forfeits, its timeline events)
// read from the audit store and folded by core/node-timeline.ts.
import type { AuditStore } from '../core/audit-ports';
import { buildNodeTimeline, type NodeTimeline } from '../core/node-timeline';

/** Rows of each kind read per request: the newest ones (a long-lived node keeps its last rounds visible). */
export const TIMELINE_ROWS = 2_000;

/** Where settled and claimed amounts come from (services/rewards.ts); absent: those fields stay null. */
export interface NodeSettlementSource {
  nodeSettlements(nodeId: number): Promise<Map<string, { settled: string; claimed: string | null }>>;
}

export class NodeTimelines {
  constructor(
    private readonly store: Pick<AuditStore, 'nodeLedger'>,
    private readonly settlements?: NodeSettlementSource,
  ) {}

  /** By numeric id or by name; null for a node this coordinator never registered. */
  async timeline(idOrName: number | string): Promise<NodeTimeline | null> {
    const ledger = await this.store.nodeLedger(idOrName, TIMELINE_ROWS);
    if (!ledger?.node) return null;
    const timeline = buildNodeTimeline({ ...ledger, node: ledger.node });
    if (!this.settlements) return timeline;
    const settled = await this.settlements.nodeSettlements(ledger.node.id);
    return { ...timeline, epochs: timeline.epochs.map((e) => ({ ...e, ...settled.get(`${e.sessionId}/${e.epoch}`) })) };
  }
}
