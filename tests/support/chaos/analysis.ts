// What a finished chaos run is judged on: the coordinator's own records (status, ledger, timeline, rounds,
// contributions) read through the REST API, failure-detection latencies matched to the faults the harness
// injected, and an independent re-check of the ledger from the raw rows. Pure functions over plain data,
// apart from collect().
import { optional, type ContributionInfo, type LedgerResponse, type NodeInfo, type RoundInfo, type SessionEventInfo, type StatusResponse } from './api';
import type { ChaosCluster, Injection, NodeTransition } from './cluster';

export interface RunRecord {
  status: StatusResponse;
  nodes: NodeInfo[];
  ledger: LedgerResponse | null;
  ledgerError: string | null;
  events: SessionEventInfo[] | null;
  rounds: RoundInfo[];
  contributions: ContributionInfo[];
  injections: Injection[];
  transitions: NodeTransition[];
  trainingStartedAt: number;
  endedAt: number;
}

export async function collect(cluster: ChaosCluster): Promise<RunRecord> {
  const status = await cluster.api.status();
  const sessionId = status.sessionId ?? cluster.sessionId!;
  const [nodes, rounds, contributions] = await Promise.all([cluster.api.nodes(), cluster.api.rounds(sessionId), cluster.api.contributions(sessionId)]);
  let ledger: LedgerResponse | null = null;
  let ledgerError: string | null = null;
  try {
    ledger = await cluster.api.ledger(sessionId);
  } catch (error) {
    ledgerError = error instanceof Error ? error.message : String(error);
  }
  const events = await optional(() => cluster.api.events(sessionId));
  return {
    status,
    nodes,
    ledger,
    ledgerError,
    events,
    rounds: [...rounds].sort((a, b) => a.round - b.round),
    contributions,
    injections: [...cluster.injections],
    transitions: [...cluster.transitions],
    trainingStartedAt: cluster.trainingStartedAt,
    endedAt: Date.now(),
  };
}

// ------------------------------------------------------------------ failure detection

export interface Detection {
  agent: number | null;
  nodeId: number | null;
  action: Injection['action'];
  expect: 'closed' | 'silent';
  injectedAt: number;
  /** When the coordinator marked the node failed (server clock), or null if it never did. */
  detectedAt: number | null;
  /** detectedAt - injectedAt. */
  latencyMs: number | null;
  /** For a silent node: detectedAt - the node's last heartbeat the coordinator received. */
  sinceLastHeartbeatMs: number | null;
  /**
   * Where detectedAt comes from: the session timeline (server clock, ms), the node's statusChangedAt (server
   * clock, ms) or only the harness seeing it in a poll (precision: the poll interval plus a request).
   */
  source: 'event' | 'status-changed-at' | 'poll' | 'none';
  reason: string | null;
}

/** Matches every injected fault that the coordinator must notice with the first failure it recorded for that node. */
export function detections(run: Pick<RunRecord, 'injections' | 'events' | 'transitions'>, windowMs = 15_000): Detection[] {
  const result: Detection[] = [];
  for (const inj of run.injections) {
    if (!inj.expect || inj.nodeId === null || inj.nodeId === undefined) continue;
    const nodeId = inj.nodeId;
    const base: Detection = {
      agent: inj.agent ?? null,
      nodeId,
      action: inj.action,
      expect: inj.expect,
      injectedAt: inj.at,
      detectedAt: null,
      latencyMs: null,
      sinceLastHeartbeatMs: null,
      source: 'none',
      reason: null,
    };
    // Server and harness share the machine's clock; allow a millisecond of rounding.
    const inWindow = (at: number) => at >= inj.at - 2 && at <= inj.at + windowMs;
    const transition = run.transitions.find((t) => t.nodeId === nodeId && (t.status === 'failed' || t.status === 'left') && inWindow(t.statusChangedAt ?? t.observedAt));
    const event = run.events?.find((e) => e.kind === 'node-failed' && e.nodeId === nodeId && inWindow(e.at));
    if (event) {
      base.detectedAt = event.at;
      base.source = 'event';
      base.reason = event.message;
      const silent = event.detail && typeof event.detail.silentForMs === 'number' ? (event.detail.silentForMs as number) : null;
      if (silent !== null) base.sinceLastHeartbeatMs = silent;
    } else if (transition?.statusChangedAt) {
      base.detectedAt = transition.statusChangedAt;
      base.source = 'status-changed-at';
      base.reason = transition.reason;
    } else if (transition) {
      base.detectedAt = transition.observedAt;
      base.source = 'poll';
      base.reason = transition.reason;
    }
    if (base.detectedAt !== null) {
      base.latencyMs = base.detectedAt - inj.at;
      if (base.sinceLastHeartbeatMs === null && transition && inj.expect === 'silent') {
        base.sinceLastHeartbeatMs = base.detectedAt - transition.lastHeartbeatAt;
      }
      if (base.reason === null && transition) base.reason = transition.reason;
    }
    result.push(base);
  }
  return result;
}

// ------------------------------------------------------------------ the ledger, re-checked from the outside

export interface LedgerRecheck {
  ok: boolean;
  problems: string[];
  appliedUpdates: number;
  appliedSamples: number;
  appliedRounds: number;
  /** Applied (round, node) pairs seen more than once. */
  duplicates: number;
  /** Samples covered twice within one epoch by applied updates. */
  overlappingSamples: number;
}

/**
 * An independent check of exactly-once from the raw rows the API serves (the product computes its own in
 * the ledger endpoint; this one is the harness not taking its word for it).
 */
export function recheckLedger(run: Pick<RunRecord, 'status' | 'rounds' | 'contributions' | 'nodes'>): LedgerRecheck {
  const problems: string[] = [];
  const applied = run.contributions.filter((c) => c.status === 'applied');
  const seen = new Map<string, number>();
  for (const c of applied) seen.set(`${c.round}/${c.nodeId}`, (seen.get(`${c.round}/${c.nodeId}`) ?? 0) + 1);
  const duplicates = [...seen.values()].filter((n) => n > 1).reduce((s, n) => s + n - 1, 0);
  if (duplicates) problems.push(`${duplicates} update(s) applied more than once`);

  const appliedSamples = applied.reduce((s, c) => s + c.samples, 0);
  const totalSamples = run.status.session?.totalSamples ?? 0;
  if (appliedSamples !== totalSamples) problems.push(`applied updates carry ${appliedSamples} samples, the session counts ${totalSamples}`);

  const appliedRoundNumbers = new Set(run.rounds.filter((r) => r.applied).map((r) => r.round));
  if (appliedRoundNumbers.size !== run.status.modelVersion) problems.push(`${appliedRoundNumbers.size} rounds applied, model version ${run.status.modelVersion}`);
  for (const c of applied) {
    if (!appliedRoundNumbers.has(c.round)) {
      problems.push(`update of node ${c.nodeId} credited in round ${c.round}, which is not an applied round`);
      break;
    }
  }
  for (const r of run.rounds) {
    if (!r.applied) continue;
    const mine = applied.filter((c) => c.round === r.round);
    const samples = mine.reduce((s, c) => s + c.samples, 0);
    if (samples !== r.samples || mine.length !== r.updates) {
      problems.push(`round ${r.round}: ${r.updates} updates / ${r.samples} samples, ledger rows ${mine.length} / ${samples}`);
      break;
    }
  }

  let overlappingSamples = 0;
  const byEpoch = new Map<number, [number, number][]>();
  for (const c of applied) {
    if (c.epoch === undefined || c.shardStart === undefined || c.shardCount === undefined) continue;
    const list = byEpoch.get(c.epoch) ?? [];
    list.push([c.shardStart, c.shardStart + c.shardCount]);
    byEpoch.set(c.epoch, list);
  }
  for (const [epoch, shards] of byEpoch) {
    shards.sort((a, b) => a[0] - b[0]);
    let end = -1;
    let overlap = 0;
    for (const [s, e] of shards) {
      if (s < end) overlap += Math.min(end, e) - s;
      end = Math.max(end, e);
    }
    if (overlap) problems.push(`epoch ${epoch}: ${overlap} sample(s) trained into the model twice`);
    overlappingSamples += overlap;
  }

  return { ok: problems.length === 0, problems, appliedUpdates: applied.length, appliedSamples, appliedRounds: appliedRoundNumbers.size, duplicates, overlappingSamples };
}

/** What /api/nodes credits each node with, against the applied updates of the ledger. */
export function nodeCredits(run: Pick<RunRecord, 'nodes' | 'contributions'>): { ok: boolean; detail: string } {
  const applied = run.contributions.filter((c) => c.status === 'applied');
  const wrong: string[] = [];
  for (const node of run.nodes) {
    const mine = applied.filter((c) => c.nodeId === node.id);
    const samples = mine.reduce((s, c) => s + c.samples, 0);
    if (node.acceptedSamples !== samples || node.acceptedContributions !== mine.length) {
      wrong.push(`${node.name} (#${node.id}) shows ${node.acceptedContributions} updates / ${node.acceptedSamples} samples, ledger ${mine.length} / ${samples}`);
    }
  }
  const credited = run.nodes.reduce((s, n) => s + (n.acceptedSamples ?? 0), 0);
  const total = applied.reduce((s, c) => s + c.samples, 0);
  return { ok: wrong.length === 0, detail: wrong.length ? `${credited} samples credited in /api/nodes, ${total} in the ledger: ${wrong.join('; ')}` : `${credited} samples, as in the ledger` };
}

export function rejectedByReason(run: Pick<RunRecord, 'ledger' | 'contributions'>): Record<string, number> {
  if (run.ledger?.rejectedByReason) return { ...run.ledger.rejectedByReason };
  const out: Record<string, number> = {};
  for (const c of run.contributions) {
    if (c.status !== 'rejected') continue;
    const code = (c.reason ?? 'UNKNOWN').split(':')[0];
    out[code] = (out[code] ?? 0) + 1;
  }
  return out;
}

// ------------------------------------------------------------------ rounds

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function quantile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export const roundDuration = (r: RoundInfo) => r.closedAt - r.openedAt;

/** Nodes whose update was applied in each round. */
export function contributorsByRound(contributions: ContributionInfo[]): Map<number, Set<number>> {
  const map = new Map<number, Set<number>>();
  for (const c of contributions) {
    if (c.status !== 'applied') continue;
    const set = map.get(c.round) ?? new Set<number>();
    set.add(c.nodeId);
    map.set(c.round, set);
  }
  return map;
}
