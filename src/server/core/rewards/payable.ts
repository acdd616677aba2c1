// THE one place that decides which committed event settles an epoch, and which of its credits are payable.
// Today an epoch settles when it closes (every sample reached the model). When audits land, settlement moves to
// the `epoch-audited` event and the credits of nodes whose audit failed that epoch become unpayable: change
// SETTLEMENT_TRIGGER to 'epoch-audited' and pass its forfeitedNodeIds, nothing else.
import type { CommittedEvent } from '../engine/committed';

export const SETTLEMENT_TRIGGER = 'epoch-closed' as const satisfies CommittedEvent['kind'];

/** The (session, epoch) a committed event asks to settle, or null when it settles nothing. */
export function settlementRequest(event: CommittedEvent): { sessionId: number; epoch: number; forfeitedNodeIds: readonly number[] } | null {
  if (event.kind !== SETTLEMENT_TRIGGER) return null;
  const forfeited = (event as { forfeitedNodeIds?: readonly number[] }).forfeitedNodeIds ?? [];
  return { sessionId: event.sessionId, epoch: event.epoch, forfeitedNodeIds: forfeited };
}

export interface EpochCredit {
  nodeId: number;
  /** Accepted samples of this node whose shards belong to the epoch. */
  samples: number;
}

export type Unpayable = { nodeId: number; samples: number; reason: 'audit-failed' | 'no-payout-address' };

/**
 * Splits an epoch's credits into payable samples per node and the ones that earn nothing, with the reason.
 * `payoutAddress` says where a node is paid (null: it never bound a wallet, so nothing can be paid to it).
 */
export function payableCredits(
  credits: readonly EpochCredit[],
  forfeited: ReadonlySet<number> | undefined,
  payoutAddress: (nodeId: number) => string | null,
): { payable: Map<number, number>; unpayable: Unpayable[] } {
  const payable = new Map<number, number>();
  const unpayable: Unpayable[] = [];
  for (const credit of credits) {
    if (credit.samples <= 0) continue;
    if (forfeited?.has(credit.nodeId)) unpayable.push({ nodeId: credit.nodeId, samples: credit.samples, reason: 'audit-failed' });
    else if (!payoutAddress(credit.nodeId)) unpayable.push({ nodeId: credit.nodeId, samples: credit.samples, reason: 'no-payout-address' });
    else payable.set(credit.nodeId, (payable.get(credit.nodeId) ?? 0) + credit.samples);
  }
  return { payable, unpayable };
}
