// "Why did I earn this": a node's ledger rows (contributions, rejections, audits, forfeits, its timeline events)
// read from the audit store and folded by core/node-timeline.ts.
import type { AuditStore } from '../core/audit-ports';
import { buildNodeTimeline, type NodeTimeline } from '../core/node-timeline';

/** Rows of each kind read per request: the newest ones (a long-lived node keeps its last rounds visible). */
export const TIMELINE_ROWS = 2_000;

export class NodeTimelines {
  constructor(private readonly store: Pick<AuditStore, 'nodeLedger'>) {}

  /** By numeric id or by name; null for a node this coordinator never registered. */
  async timeline(idOrName: number | string): Promise<NodeTimeline | null> {
    const ledger = await this.store.nodeLedger(idOrName, TIMELINE_ROWS);
    if (!ledger?.node) return null;
    return buildNodeTimeline({ ...ledger, node: ledger.node });
  }
}
