// Output schema of nodes.contributionTimeline (GET /api/nodes/{id}/timeline), mirroring core/node-timeline.ts;
// the check at the bottom fails the build when the two drift apart.
import { z } from 'zod';
import type { NodeTimeline } from '../core/node-timeline';
import { sessionEvent } from './dto';

const int = z.number();
const auditOutcome = z.enum(['pending', 'pass', 'fail', 'error']);

export const timelineRound = z.object({
  sessionId: int,
  round: int,
  epoch: int.nullable(),
  assignedSamples: int,
  delivered: z.boolean(),
  status: z.enum(['accepted', 'late', 'rejected']),
  count: int,
  reasonCode: z.string().nullable(),
  reason: z.string().nullable(),
  audit: z
    .object({
      outcome: auditOutcome,
      selectedBy: z.enum(['reservoir', 'sampled', 'reservoir+sampled', 'unrecoverable']),
      relativeError: z.number().nullable(),
      tolerance: z.number(),
      detail: z.string().nullable(),
      resolvedAt: int.nullable(),
    })
    .nullable(),
  creditedSamples: int,
  forfeited: z.boolean(),
  at: int,
});

export const timelineEpoch = z.object({
  sessionId: int,
  epoch: int,
  acceptedUpdates: int,
  acceptedSamples: int,
  audits: z.object({ pass: int, fail: int, error: int, pending: int }),
  forfeited: z.boolean(),
  forfeitReason: z.string().nullable(),
  creditedSamples: int,
  /** Base units as decimal strings, filled by the chain settlement. */
  settled: z.string().nullable(),
  claimed: z.string().nullable(),
});

export const nodeTimeline = z.object({
  node: z.object({ id: int, name: z.string(), firstSeenAt: int, lastSeenAt: int }),
  totals: z.object({ delivered: int, accepted: int, late: int, rejected: int, audited: int, auditsFailed: int, creditedSamples: int, forfeitedSamples: int }),
  rounds: z.array(timelineRound),
  epochs: z.array(timelineEpoch),
  events: z.array(sessionEvent.pick({ sessionId: true, at: true, round: true, kind: true, message: true })),
});

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;
export type TimelineDtoMatchesDomain = [Expect<Equal<z.output<typeof nodeTimeline>, NodeTimeline>>];
