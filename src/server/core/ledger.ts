// The exactly-once audit of a session's ledger: every applied update recorded once, none lost, none twice,
// and the model consumed exactly the samples the ledger credits. Pure: it checks rows it is given.
import type { ContributionRecord, RoundSummary, SessionSnapshot } from './types';

export interface EpochCoverage {
  epoch: number;
  /** Distinct samples of this epoch consumed by applied updates. */
  covered: number;
  /** Samples consumed more than once within the epoch (must be 0). */
  overlapping: number;
  /** Samples still queued for reassignment at the last recorded round. */
  pending: number;
  /** Samples of a finished epoch neither consumed nor pending (silently skipped; must be 0). */
  skipped: number;
}

export interface LedgerReport {
  ok: boolean;
  problems: string[];
  sessionId: number;
  state: string;
  appliedRounds: number;
  modelVersion: number;
  appliedUpdates: number;
  /** Sum of the samples of applied contributions (what nodes are credited for). */
  appliedSamples: number;
  /** Sum of the samples of applied rounds (what the model consumed). */
  roundSamples: number;
  /** The session's own count of samples in the model. */
  modelSamples: number;
  duplicates: number;
  rejectedUpdates: number;
  rejectedByReason: Record<string, number>;
  epochs: EpochCoverage[];
}

export function verifyLedger(session: SessionSnapshot, rounds: RoundSummary[], contributions: ContributionRecord[], trainSize: number): LedgerReport {
  const problems: string[] = [];
  const applied = contributions.filter((c) => c.status === 'applied');
  const rejected = contributions.filter((c) => c.status === 'rejected');
  const appliedRounds = rounds.filter((r) => r.applied);
  const roundByNumber = new Map(rounds.map((r) => [r.round, r]));

  const seen = new Set<string>();
  let duplicates = 0;
  for (const c of applied) {
    const key = `${c.round}/${c.nodeId}`;
    if (seen.has(key)) duplicates++;
    seen.add(key);
    const round = roundByNumber.get(c.round);
    if (!round) problems.push(`applied contribution of node ${c.nodeId} for round ${c.round}, which is not recorded`);
    else if (!round.applied) problems.push(`contribution of node ${c.nodeId} counted as applied in round ${c.round}, which was not applied`);
    if (c.shardCount !== c.samples) problems.push(`round ${c.round} node ${c.nodeId}: ${c.samples} samples credited for a shard of ${c.shardCount}`);
  }
  if (duplicates > 0) problems.push(`${duplicates} update(s) applied twice`);

  for (const round of rounds) {
    const mine = applied.filter((c) => c.round === round.round);
    const samples = mine.reduce((s, c) => s + c.samples, 0);
    if (round.applied && (mine.length !== round.updates || samples !== round.samples)) {
      problems.push(`round ${round.round}: ${round.updates} updates / ${round.samples} samples applied, ledger has ${mine.length} / ${samples}`);
    }
    if (!round.applied && mine.length > 0) problems.push(`round ${round.round} was not applied but credits ${mine.length} update(s)`);
  }

  const appliedSamples = applied.reduce((s, c) => s + c.samples, 0);
  const roundSamples = appliedRounds.reduce((s, r) => s + r.samples, 0);
  if (appliedSamples !== roundSamples) problems.push(`contributions credit ${appliedSamples} samples, applied rounds consumed ${roundSamples}`);
  if (roundSamples !== session.totalSamples) problems.push(`applied rounds consumed ${roundSamples} samples, the model counts ${session.totalSamples}`);
  if (appliedRounds.length !== session.modelVersion) problems.push(`${appliedRounds.length} rounds applied, but the model is at version ${session.modelVersion}`);
  const versions = appliedRounds.map((r) => r.modelVersion).sort((a, b) => a - b);
  versions.forEach((v, i) => {
    if (v !== i + 1) problems.push(`applied rounds do not advance the model one version at a time (version ${v} at position ${i + 1})`);
  });

  const epochs = epochCoverage(applied, rounds.at(-1)?.cursor ?? null, trainSize);
  for (const e of epochs) {
    if (e.overlapping > 0) problems.push(`epoch ${e.epoch}: ${e.overlapping} sample(s) consumed twice`);
    if (e.skipped > 0) problems.push(`epoch ${e.epoch}: ${e.skipped} sample(s) silently skipped`);
  }

  const rejectedByReason: Record<string, number> = {};
  let rejectedUpdates = 0;
  for (const c of rejected) {
    rejectedUpdates += c.count ?? 1;
    const code = (c.reason ?? 'UNKNOWN').split(':')[0];
    rejectedByReason[code] = (rejectedByReason[code] ?? 0) + (c.count ?? 1);
  }
  return {
    ok: problems.length === 0,
    problems: problems.slice(0, 50),
    sessionId: session.id,
    state: session.state,
    appliedRounds: appliedRounds.length,
    modelVersion: session.modelVersion,
    appliedUpdates: applied.length,
    appliedSamples,
    roundSamples,
    modelSamples: session.totalSamples,
    duplicates,
    rejectedUpdates,
    rejectedByReason,
    epochs,
  };
}

function epochCoverage(applied: ContributionRecord[], cursor: RoundSummary['cursor'] | null, trainSize: number): EpochCoverage[] {
  const byEpoch = new Map<number, Uint8Array>();
  const overlaps = new Map<number, number>();
  for (const c of applied) {
    let counts = byEpoch.get(c.epoch);
    if (!counts) byEpoch.set(c.epoch, (counts = new Uint8Array(trainSize)));
    for (let i = c.shardStart; i < Math.min(trainSize, c.shardStart + c.shardCount); i++) {
      if (counts[i] > 0) overlaps.set(c.epoch, (overlaps.get(c.epoch) ?? 0) + 1);
      counts[i] = Math.min(255, counts[i] + 1);
    }
  }
  const pendingByEpoch = new Map<number, number>();
  for (const p of cursor?.pending ?? []) pendingByEpoch.set(p.epoch, (pendingByEpoch.get(p.epoch) ?? 0) + p.count);
  const currentEpoch = cursor?.epoch ?? 0;
  return [...byEpoch.keys()]
    .sort((a, b) => a - b)
    .map((epoch) => {
      const counts = byEpoch.get(epoch)!;
      let covered = 0;
      for (let i = 0; i < counts.length; i++) if (counts[i] > 0) covered++;
      const pending = pendingByEpoch.get(epoch) ?? 0;
      // Only an epoch the cursor has moved past can be checked for completeness.
      const skipped = epoch < currentEpoch ? Math.max(0, trainSize - covered - pending) : 0;
      return { epoch, covered, overlapping: overlaps.get(epoch) ?? 0, pending, skipped };
    });
}
