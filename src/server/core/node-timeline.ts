// "Why did I earn this": one node's ledger rows folded into a timeline per round and per epoch. Pure; the
// rows come from the audit store (adapters/db/audits.ts nodeLedger). `settled` and `claimed` are the chain
// settlement's to fill (null until then).
import type { AuditRecord, NodeLedger } from './audit-ports';
import type { SessionEventKind } from './types';

export interface TimelineAudit {
  outcome: AuditRecord['outcome'];
  selectedBy: AuditRecord['selectedBy'];
  relativeError: number | null;
  tolerance: number;
  detail: string | null;
  resolvedAt: number | null;
}

export interface TimelineRound {
  sessionId: number;
  round: number;
  /** The epoch of the samples (null for a rejected update: its samples never counted). */
  epoch: number | null;
  /** Samples the node was assigned in the round (known for updates it delivered). */
  assignedSamples: number;
  delivered: boolean;
  /** accepted: in an applied round; late: arrived after its round closed; rejected: any other refusal. */
  status: 'accepted' | 'late' | 'rejected';
  /** Updates this row stands for (identical rejections are tallied). */
  count: number;
  reasonCode: string | null;
  reason: string | null;
  audit: TimelineAudit | null;
  /** Samples credited (accepted samples, 0 if the epoch was forfeited). */
  creditedSamples: number;
  forfeited: boolean;
  at: number;
}

export interface TimelineEpoch {
  sessionId: number;
  epoch: number;
  acceptedUpdates: number;
  acceptedSamples: number;
  audits: { pass: number; fail: number; error: number; pending: number };
  forfeited: boolean;
  forfeitReason: string | null;
  creditedSamples: number;
  /** Filled by the chain settlement; null until it runs. */
  settled: string | null;
  claimed: string | null;
}

export interface NodeTimeline {
  node: { id: number; name: string; firstSeenAt: number; lastSeenAt: number };
  totals: { delivered: number; accepted: number; late: number; rejected: number; audited: number; auditsFailed: number; creditedSamples: number; forfeitedSamples: number };
  rounds: TimelineRound[];
  epochs: TimelineEpoch[];
  /** Joined, failed, benched, audit failed...: the node's own timeline events. */
  events: { sessionId: number; at: number; round: number; kind: SessionEventKind; message: string }[];
}

/** A ledger reason is "CODE: text" (core/engine/rounds.ts): split for the page; anything else keeps its text. */
export function splitReason(reason: string | null): { code: string | null; text: string | null } {
  if (reason === null) return { code: null, text: null };
  const m = /^([A-Z][A-Z0-9_]*): ([\s\S]*)$/.exec(reason);
  return m ? { code: m[1], text: m[2] } : { code: null, text: reason };
}

const LATE_CODES = new Set(['STALE_ROUND']);

export function buildNodeTimeline(ledger: NodeLedger & { node: NonNullable<NodeLedger['node']> }): NodeTimeline {
  const auditOf = new Map(ledger.audits.map((a) => [`${a.sessionId}/${a.round}`, a]));
  const forfeitOf = new Map(ledger.forfeits.map((f) => [`${f.sessionId}/${f.epoch}`, f]));
  const rounds: TimelineRound[] = ledger.contributions.map((c) => {
    const accepted = c.status === 'applied';
    const { code, text } = splitReason(c.reason);
    const audit = accepted ? auditOf.get(`${c.sessionId}/${c.round}`) : undefined;
    const forfeited = accepted && forfeitOf.has(`${c.sessionId}/${c.epoch}`);
    return {
      sessionId: c.sessionId,
      round: c.round,
      epoch: accepted ? c.epoch : null,
      assignedSamples: accepted ? c.shardCount : c.samples,
      delivered: true,
      status: accepted ? 'accepted' : code !== null && LATE_CODES.has(code) ? 'late' : 'rejected',
      count: c.count ?? 1,
      reasonCode: code,
      reason: text,
      audit: audit ? { outcome: audit.outcome, selectedBy: audit.selectedBy, relativeError: audit.relativeError, tolerance: audit.tolerance, detail: audit.detail, resolvedAt: audit.resolvedAt } : null,
      creditedSamples: accepted && !forfeited ? c.samples : 0,
      forfeited,
      at: c.receivedAt,
    };
  });
  // Audits of rounds whose contribution fell out of the window still count toward their epoch.
  const epochs = new Map<string, TimelineEpoch>();
  const epochOf = (sessionId: number, epoch: number): TimelineEpoch => {
    const k = `${sessionId}/${epoch}`;
    let e = epochs.get(k);
    if (!e) {
      const f = forfeitOf.get(k);
      e = { sessionId, epoch, acceptedUpdates: 0, acceptedSamples: 0, audits: { pass: 0, fail: 0, error: 0, pending: 0 }, forfeited: !!f, forfeitReason: f?.reason ?? null, creditedSamples: 0, settled: null, claimed: null };
      epochs.set(k, e);
    }
    return e;
  };
  for (const r of rounds) {
    if (r.status !== 'accepted' || r.epoch === null) continue;
    const e = epochOf(r.sessionId, r.epoch);
    e.acceptedUpdates++;
    e.acceptedSamples += r.assignedSamples;
    e.creditedSamples += r.creditedSamples;
  }
  for (const a of ledger.audits) epochOf(a.sessionId, a.epoch).audits[a.outcome]++;
  for (const f of ledger.forfeits) epochOf(f.sessionId, f.epoch);
  const accepted = rounds.filter((r) => r.status === 'accepted');
  return {
    node: ledger.node,
    totals: {
      delivered: rounds.reduce((n, r) => n + r.count, 0),
      accepted: accepted.length,
      late: rounds.filter((r) => r.status === 'late').reduce((n, r) => n + r.count, 0),
      rejected: rounds.filter((r) => r.status === 'rejected').reduce((n, r) => n + r.count, 0),
      audited: ledger.audits.filter((a) => a.outcome === 'pass' || a.outcome === 'fail').length,
      auditsFailed: ledger.audits.filter((a) => a.outcome === 'fail').length,
      creditedSamples: accepted.reduce((n, r) => n + r.creditedSamples, 0),
      forfeitedSamples: accepted.filter((r) => r.forfeited).reduce((n, r) => n + r.assignedSamples, 0),
    },
    rounds: rounds.sort((a, b) => b.sessionId - a.sessionId || b.round - a.round),
    epochs: [...epochs.values()].sort((a, b) => b.sessionId - a.sessionId || b.epoch - a.epoch),
    events: ledger.events.map((e) => ({ sessionId: e.sessionId, at: e.at, round: e.round, kind: e.kind, message: e.message })),
  };
}
