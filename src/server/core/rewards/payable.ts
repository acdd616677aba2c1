// THE one place that decides which committed event settles an epoch, and which of its credits are payable.
// An epoch settles once its audits are resolved (`epoch-audited`, committed by services/audits.ts after
// `epoch-closed`): the credits of nodes whose audit failed in that epoch are unpayable, with the reason.
import type { CommittedEvent } from '../engine/committed';

export const SETTLEMENT_TRIGGER = 'epoch-audited' as const satisfies CommittedEvent['kind'];

/** The (session, epoch) a committed event asks to settle, or null when it settles nothing. */
export function settlementRequest(event: CommittedEvent): { sessionId: number; epoch: number; forfeitedNodeIds: readonly number[] } | null {
  if (event.kind !== SETTLEMENT_TRIGGER) return null;
  return { sessionId: event.sessionId, epoch: event.epoch, forfeitedNodeIds: event.forfeitedNodeIds };
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
