// Verified work: which accepted updates are recomputed, how a recomputation is judged, and what a failed audit
// costs. Pure: the draws come in as numbers (the audit service's random port), the gradients as arrays. The service (services/audits.ts) does the I/O: capture, the auditor worker, the ledger.
//
// Selection, per (node, epoch), two independent rules:
//  1. Reservoir of one: the n-th update a node delivers in an epoch replaces the node's held candidate with
//     probability 1/n, so when the epoch closes the held one is a uniformly random one of ALL its updates in
//     that epoch. Every node that delivered is audited at least once per epoch, and no update is safer than
//     another (a "first update of the epoch is checked, the rest are not" rule would be gamed at once).
//  2. Bernoulli p = AUDIT_RATE per update on top: a node fabricating a fraction f of its k updates in an
//     epoch escapes rule 2 with probability (1-p)^(fk) and rule 1 with probability 1-f, so it is caught with
//     1 - (1-f)(1-p)^(fk). Fabricating everything (f = 1) is always caught; f = 0.1 over k = 100 updates:
//     1 - 0.9 * 0.95^10 = 46% per epoch, and that compounds over epochs (forfeits are per epoch).
//     Cost: one recomputation is one shard's forward+backward (what the node spent on it), on ONE auditor
//     thread. The auditor therefore carries about p = 5% of the pool's training compute, plus one shard per node
//     per epoch: fine for a handful of nodes (the local default), a full core at about 20 nodes. Past that the
//     audits fall behind: the waiting captures spill to disk (AUDIT_SPILL_BYTES), and once that is full chosen
//     updates are recorded as not audited (visible, never passed): a larger pool
//     wants a lower HYPERGPU_AUDIT_RATE (the once-per-epoch audits stay) or audits delegated to other agents.
//     (Measured in CPU compute: a GPU node's shard recomputed on the coordinator's CPU costs many times more.)
// The draws come from the operating system's CSPRNG (runtime.ts), never from anything a node sees (round nonces,
// the permutation seed, a seeded generator whose outputs it could observe), so a node cannot predict which of
// its updates is checked.

import { NO_CREDIT, type NodeCredit } from './engine/committed';

/** Per-update probability of an audit besides the one-per-node-per-epoch reservoir (see above). */
export const AUDIT_RATE = 0.05;

/**
 * Largest relative L2 error ||reported - recomputed|| / ||recomputed|| an honest update may show.
 * Measured (npx tsx scripts/measure-audit-tolerance.ts 60: MLP on MNIST, 60 shards of 8-256 samples over the
 * first 30 versions of an SGD run): wasm vs wasm with the agent's micro-batch at 128/64/32 against the
 * auditor's 128: max 0 / 2.3e-7 / 2.2e-7; cpu (pure JS) vs wasm: max 4.2e-7 (float32 summation order only).
 * A fabricated update with the right norm and a random direction scores 1.41 (sqrt 2). 1e-3 is more than three
 * orders of magnitude above the worst honest error (room for backends not measured here: native TF, GPU
 * reductions that reorder sums, fused kernels) and three below the fabrication: an update perturbed by less
 * than 0.1% is not worth catching.
 */
export const AUDIT_TOLERANCE = 1e-3;

/**
 * Bounds on the captures waiting for the auditor (services/audit-vault.ts holds them). A capture is the update as
 * the node sent it plus the model it trained from (one copy per round, shared), 437 KB each for the MLP. At 100
 * nodes the waiting set is large: one reservoir candidate per node until its epoch closes, every sampled update
 * until the single auditor thread gets to it, and captures of rounds whose commit the audits consumer has not
 * seen yet while it waits on an epoch's audits. Held in memory that was 256 updates and ~112 MB of the
 * coordinator's RSS (and updates beyond it were recorded as not audited). So only AUDIT_MEMORY_BYTES stay in
 * memory; the rest go to scratch files under the data folder and are read back one at a time when their audit
 * runs, so an audit chosen is still an audit done. The disk is bounded too (a stalled auditor must not fill the
 * operator's disk): past AUDIT_SPILL_BYTES a chosen update is recorded as not audited, as before, never passed.
 * Why these sizes: a spilled vector costs a page-cache write and read (about 0.5 ms for 437 KB here) against a
 * recomputation's tens of ms, so memory buys almost nothing; 4 MiB keeps a small session (a few nodes: their
 * reservoir candidates and the odd sampled update) off the disk entirely. 1 GiB is about 2,400 MLP vectors: at
 * 100 simulated nodes the bench's 25 rounds peaked at about 460 MB of them. HYPERGPU_AUDIT_MEMORY_MB and
 * HYPERGPU_AUDIT_SPILL_MB override both.
 */
export const AUDIT_MEMORY_BYTES = 4 * 2 ** 20;
export const AUDIT_SPILL_BYTES = 2 ** 30;

export type AuditOutcome = 'pass' | 'fail' | 'error';

export interface AuditSelection {
  /** Becomes the node's held candidate for this epoch (rule 1). */
  reservoir: boolean;
  /** Audited on its own right (rule 2). */
  sampled: boolean;
}

/**
 * Decides for the `n`-th update (1-based) a node delivered in an epoch, from two uniform draws in [0, 1).
 */
export function selectForAudit(n: number, drawReservoir: number, drawSample: number, rate = AUDIT_RATE): AuditSelection {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`update number in the epoch must be a positive integer, got ${n}`);
  return { reservoir: drawReservoir * n < 1, sampled: drawSample < rate };
}

export interface UpdateComparison {
  /** ||reported - recomputed|| / ||recomputed|| (Infinity when the recomputation is all zeros and the report is not). */
  relativeError: number;
  /** Cosine of the angle between them (NaN when either is all zeros). */
  cosine: number;
}

/** Compares what a node reported with what the auditor recomputed; accumulates in float64. */
export function compareUpdates(reported: Float32Array, recomputed: Float32Array): UpdateComparison {
  if (reported.length !== recomputed.length) throw new RangeError(`reported update has ${reported.length} values, the recomputation ${recomputed.length}`);
  let diff = 0;
  let a2 = 0;
  let b2 = 0;
  let dot = 0;
  for (let i = 0; i < reported.length; i++) {
    const a = reported[i];
    const b = recomputed[i];
    const d = a - b;
    diff += d * d;
    a2 += a * a;
    b2 += b * b;
    dot += a * b;
  }
  const relativeError = b2 > 0 ? Math.sqrt(diff) / Math.sqrt(b2) : diff > 0 ? Number.POSITIVE_INFINITY : 0;
  const cosine = a2 > 0 && b2 > 0 ? dot / Math.sqrt(a2 * b2) : Number.NaN;
  return { relativeError, cosine };
}

/** Pass within the tolerance; anything else (NaN included) fails. */
export function verdict(comparison: UpdateComparison, tolerance = AUDIT_TOLERANCE): 'pass' | 'fail' {
  return comparison.relativeError <= tolerance ? 'pass' : 'fail';
}

export interface AuditResult {
  nodeId: number;
  /** 'pending' counts as not done (it never forfeits). */
  outcome: AuditOutcome | 'pending';
}

/**
 * The nodes that forfeit an epoch's credit: those with at least one failed audit in it. An audit that could
 * not run ('error': model version gone, worker crashed, coordinator restarted) proves nothing either way and
 * forfeits nothing. Sorted, unique.
 */
export function forfeitedNodes(results: readonly AuditResult[]): number[] {
  return [...new Set(results.filter((r) => r.outcome === 'fail').map((r) => r.nodeId))].sort((a, b) => a - b);
}

/**
 * Credits rebuilt from the ledger (recovery) with the epochs each node forfeited, as the epoch-audited fold
 * would have left them.
 */
export function withForfeits(credits: ReadonlyMap<number, NodeCredit>, forfeits: readonly { nodeId: number; epoch: number }[]): Map<number, NodeCredit> {
  const next = new Map(credits);
  for (const f of forfeits) {
    const credit = next.get(f.nodeId) ?? NO_CREDIT;
    next.set(f.nodeId, { ...credit, forfeitedEpochs: [...new Set([...(credit.forfeitedEpochs ?? []), f.epoch])].sort((a, b) => a - b) });
  }
  return next;
}

/** The reason a forfeit carries into the ledger (and the node's timeline). */
export function forfeitReason(epoch: number, failed: readonly { round: number; relativeError: number }[], tolerance = AUDIT_TOLERANCE): string {
  const rounds = failed.map((f) => `round ${f.round} (relative error ${formatError(f.relativeError)})`).join(', ');
  return `AUDIT_FAILED: epoch ${epoch} credit forfeited: recomputed update did not match the one sent in ${rounds}; tolerance ${tolerance}`;
}

function formatError(value: number): string {
  return Number.isFinite(value) ? value.toPrecision(3) : String(value);
}
