// A round's outlier scores, once its aggregation measured every update's distance from the result: kept on
// each node (the node table shows them) and returned for the round's contributions (the ledger keeps them).
import type { AcceptedUpdate } from '../round';
import { changeNode } from './node-pool';
import { outlierScores } from './robust-scoring';
import type { Transition } from './transition';

/** A node this many times further from the aggregate than the round's median is named in the log. */
export const OUTLIER_LOG_SCORE = 5;

/**
 * Scores the round's accepted updates from `distances` (in the plan's slot order, which is the accepted order);
 * none when the aggregator measured none. Returns the score per node.
 */
export function recordOutlierScores(t: Transition, round: number, accepted: readonly AcceptedUpdate<number>[], distances: readonly number[] | undefined): Map<number, number> {
  const byNode = new Map<number, number>();
  if (!distances || distances.length !== accepted.length) return byNode;
  const scores = outlierScores(distances);
  const pool = new Map(t.state.pool);
  accepted.forEach((u, i) => {
    const score = scores[i];
    if (score === null) return;
    byNode.set(u.nodeId, score);
    const before = pool.get(u.nodeId)?.outlierScore ?? null;
    changeNode(pool, u.nodeId, (n) => ({ ...n, outlierScore: score }));
    // Named when it becomes an outlier, not every round it stays one (the ledger has every round's score).
    if (score >= OUTLIER_LOG_SCORE && (before === null || before < OUTLIER_LOG_SCORE)) {
      const name = pool.get(u.nodeId)?.name ?? '?';
      t.log('warn', `round ${round}: node ${name} (#${u.nodeId}) sent an update ${score.toFixed(1)}x further from the aggregate than the round's median`);
    }
  });
  t.set({ pool });
  return byNode;
}
