// Verified work: accepted updates chosen for an audit (core/audit.ts decides which, and how they are judged) are
// recomputed by the auditor worker from the same model version and samples; when an epoch closes and its
// audits are resolved, the nodes caught forfeit its credit, in one transaction with the epoch-audited event.
//
// Off the critical path: capture() is a copy of the chosen updates while the round aggregates (frames and
// slots are reused after it), everything else runs from the outbox (this is a consumer, with its own cursor)
// and the auditor's own thread. Nothing here delays a round. The copies wait in an AuditVault: a small memory
// bound, scratch files past it, a disk bound past that (why: AUDIT_MEMORY_BYTES in core/audit.ts).
// Across a crash: chosen updates live in this process only (memory or its scratch files, which the next
// process deletes unread). A pending audit row, or an epoch contributor with no
// audit at all, is recorded as 'error' (not done) when its epoch is audited after the restart: never a pass,
// never a forfeit. The epoch-closed event is redelivered until its epoch-audited commit is made (the cursor
// moves only after handle() resolves), and EpochAudit makes that commit once.
import { AUDIT_MEMORY_BYTES, AUDIT_SPILL_BYTES, AUDIT_TOLERANCE, compareUpdates, forfeitedNodes, forfeitReason, selectForAudit, verdict } from '../core/audit';
import type { AuditRecord, AuditSpill, AuditStore, Auditor, ForfeitRecord } from '../core/audit-ports';
import type { CommittedEvent, OutboxRecord } from '../core/engine/committed';
import type { LiveRound } from '../core/engine/state';
import type { Clock, UpdateSlot } from '../core/ports';
import type { ModelName, SessionConfig } from '../core/types';
import { AuditVault, type Held, type VaultLimits } from './audit-vault';
import type { ModelStore } from './model-store';
import type { OutboxConsumer } from './outbox';

type EpochAudited = Extract<CommittedEvent, { kind: 'epoch-audited' }>;

export interface AuditsDeps {
  store: AuditStore;
  createAuditor(model: ModelName, dataset: string): Promise<Auditor>;
  model: Pick<ModelStore, 'model' | 'paramsCopy'>;
  clock: Clock;
  /** Uniform draws in [0, 1) from a source the nodes cannot see (crypto in production, seeded in tests). */
  random(): number;
  session(sessionId: number): { config: SessionConfig } | null;
  /** Hands committed records to the outbox's consumers (settlement waits for epoch-audited). */
  deliver(records: OutboxRecord[]): void;
  /** Tells the engine (it folds the event and flags the nodes caught). */
  report(event: EpochAudited, reasons: Record<number, string>): void;
  log(level: 'info' | 'warn' | 'error', message: string): void;
  tolerance?: number;
  rate?: number;
  /** Scratch files for captures past the memory bound (none: past it, chosen updates are not audited). */
  spill?: AuditSpill;
  /** Default AUDIT_MEMORY_BYTES and AUDIT_SPILL_BYTES. */
  limits?: Partial<VaultLimits>;
}

interface Capture {
  sessionId: number;
  round: number;
  nodeId: number;
  attempt: number;
  epoch: number;
  shardStart: number;
  shardCount: number;
  modelVersion: number;
  /** In the vault: the update as sent, and the model of its round (shared by the round's captures); null when
   * the session's updates cannot be recomputed (unauditableReason): the audit is recorded, nothing is kept. */
  update: Held | null;
  params: Held | null;
  /** Set once its vectors went back to the vault (exactly once: a capture may be in the reservoir and a run). */
  released: boolean;
  reservoir: boolean;
  sampled: boolean;
  at: number;
}

const key = (epoch: number, nodeId: number) => `${epoch}/${nodeId}`;
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

export class Audits implements OutboxConsumer {
  readonly name = 'audits';
  private sessionId: number | null = null;
  /** Chosen updates of rounds not yet committed, by round. */
  private readonly uncommitted = new Map<number, Capture[]>();
  /** Updates delivered per (epoch, node), counted at capture (the reservoir's n). */
  private readonly counts = new Map<string, number>();
  /** Each node's held reservoir candidate per epoch (committed). */
  private readonly reservoir = new Map<string, Capture>();
  /** Audit runs per epoch (resolve when recorded). */
  private readonly runs = new Map<number, Promise<void>[]>();
  private readonly vault: AuditVault;
  private chain: Promise<unknown> = Promise.resolve();
  private auditor: { sessionId: number; handle: Promise<Auditor | null> } | null = null;
  private closed = false;
  private warnedFull = false;

  constructor(private readonly deps: AuditsDeps) {
    const limits = { memoryBytes: deps.limits?.memoryBytes ?? AUDIT_MEMORY_BYTES, diskBytes: deps.limits?.diskBytes ?? AUDIT_SPILL_BYTES };
    this.vault = new AuditVault(deps.spill ?? null, limits, (message) => deps.log('warn', message));
  }

  private get tolerance(): number {
    return this.deps.tolerance ?? AUDIT_TOLERANCE;
  }

  /**
   * The round is aggregating: decides which of its accepted updates are audited and copies them (their slots
   * are reused once the aggregate is done). Synchronous, before the aggregator is asked.
   */
  capture(round: LiveRound, slotOf: (id: number) => UpdateSlot | undefined): void {
    if (this.closed || !round.outcome?.apply) return;
    const { open } = round;
    if (this.sessionId !== open.sessionId) this.reset(open.sessionId);
    const model = this.deps.model.model;
    // The model still holds the version the round trained on (it moves only after the round commits).
    if (!model || model.sessionId !== open.sessionId || model.modelVersion !== open.modelVersion) return;
    const config = this.deps.session(open.sessionId)?.config;
    const keep = config !== undefined && unauditableReason(config) === null;
    let params: Held | null = null;
    const chosen: Capture[] = [];
    for (const u of round.outcome.accepted) {
      const a = open.assignments.get(u.nodeId);
      const slot = slotOf(u.slot);
      if (!a || !slot) continue;
      const k = key(a.epoch, u.nodeId);
      const n = (this.counts.get(k) ?? 0) + 1;
      this.counts.set(k, n);
      const pick = selectForAudit(n, this.deps.random(), this.deps.random(), this.deps.rate);
      if (!pick.reservoir && !pick.sampled) continue;
      // The vault copies (or writes) what it keeps: the slot is reused and the model moves on after this.
      if (keep) params ??= this.vault.hold(model.params);
      const update = keep && params ? this.vault.hold(slot.view.subarray(0, model.params.length)) : null;
      if (keep && (!params || !update)) {
        // Both bounds full: the node's epoch is then audited with what is held, or recorded as not audited.
        if (!this.warnedFull) this.deps.log('warn', `audit queue full (memory and scratch-file bounds): round ${open.round} updates not captured`);
        this.warnedFull = true;
        if (update) this.vault.discard(update);
        continue;
      }
      chosen.push({
        sessionId: open.sessionId,
        round: open.round,
        nodeId: u.nodeId,
        attempt: u.attempt,
        epoch: a.epoch,
        shardStart: a.shardStart,
        shardCount: a.shardCount,
        modelVersion: open.modelVersion,
        update: update && this.vault.retain(update),
        params: params && update ? this.vault.retain(params) : null,
        released: false,
        reservoir: pick.reservoir,
        sampled: pick.sampled,
        at: this.deps.clock.now(),
      });
    }
    if (chosen.length > 0) this.uncommitted.set(open.round, chosen);
    else if (params) this.vault.discard(params);
  }

  async handle(record: OutboxRecord): Promise<void> {
    const event = record.event;
    switch (event.kind) {
      case 'session-started':
        this.reset(event.sessionId);
        return;
      case 'round-committed':
        if (event.sessionId === this.sessionId) this.onRoundCommitted(event.round, event.applied);
        return;
      case 'epoch-closed':
        return this.auditEpoch(event.sessionId, event.epoch);
      case 'session-state-changed':
        if (event.state === 'completed' || event.state === 'stopped' || event.state === 'failed') this.releaseAuditor(event.sessionId);
        return;
      default:
        return;
    }
  }

  private onRoundCommitted(round: number, applied: boolean): void {
    // Rounds before this one whose commit failed never will commit: their captures go.
    for (const [r, captures] of this.uncommitted) {
      if (r > round) continue;
      this.uncommitted.delete(r);
      for (const c of captures) {
        if (r !== round || !applied) {
          this.release(c);
          continue;
        }
        if (c.sampled) this.enqueue(c, c.reservoir ? 'reservoir+sampled' : 'sampled');
        if (c.reservoir) {
          const k = key(c.epoch, c.nodeId);
          const previous = this.reservoir.get(k);
          // A sampled capture is its run's to release; held here only so the node's epoch counts as covered.
          if (previous && !previous.sampled) this.release(previous);
          this.reservoir.set(k, c);
        }
      }
    }
  }

  private enqueue(c: Capture, selectedBy: AuditRecord['selectedBy']): void {
    const run = (this.chain = this.chain.then(() => this.run(c, selectedBy)).finally(() => this.release(c)));
    const list = this.runs.get(c.epoch) ?? [];
    list.push(run.then(() => undefined, () => undefined));
    this.runs.set(c.epoch, list);
  }

  private async run(c: Capture, selectedBy: AuditRecord['selectedBy']): Promise<void> {
    const { store } = this.deps;
    await store.recordAuditSelected({
      sessionId: c.sessionId,
      epoch: c.epoch,
      round: c.round,
      nodeId: c.nodeId,
      attempt: c.attempt,
      modelVersion: c.modelVersion,
      shardStart: c.shardStart,
      shardCount: c.shardCount,
      outcome: 'pending',
      selectedBy,
      relativeError: null,
      cosine: null,
      tolerance: this.tolerance,
      detail: null,
      selectedAt: c.at,
      resolvedAt: null,
    });
    let resolution;
    try {
      if (this.closed) throw new Error('the coordinator shut down before the audit ran');
      const config = this.deps.session(c.sessionId)?.config;
      if (!config) throw new Error(`session ${c.sessionId} is no longer loaded`);
      // Before the auditor: a session that cannot be audited never starts its thread (tfjs and the model, ~80 MB).
      const unauditable = unauditableReason(config);
      if (unauditable) throw new Error(unauditable);
      const auditor = await this.auditorFor(c.sessionId);
      if (!auditor) throw new Error('no auditor for this session');
      const [params, update] = [await this.read(c.params), await this.read(c.update)];
      const recomputed = await auditor.recompute({ params, seed: config.seed, epoch: c.epoch, shardStart: c.shardStart, shardCount: c.shardCount });
      const comparison = compareUpdates(update, recomputed);
      const outcome = verdict(comparison, this.tolerance);
      resolution = {
        outcome,
        relativeError: comparison.relativeError,
        cosine: Number.isNaN(comparison.cosine) ? null : comparison.cosine,
        detail: outcome === 'fail' ? `recomputed update differs: relative error ${comparison.relativeError.toPrecision(3)} > tolerance ${this.tolerance}` : null,
        resolvedAt: this.deps.clock.now(),
      };
    } catch (error) {
      resolution = { outcome: 'error' as const, relativeError: null, cosine: null, detail: `not done: ${error instanceof Error ? error.message : String(error)}`, resolvedAt: this.deps.clock.now() };
    }
    await store.resolveAudit(c.sessionId, c.round, c.nodeId, resolution);
    if (resolution.outcome !== 'pass') this.deps.log('warn', `audit of node #${c.nodeId} round ${c.round}: ${resolution.outcome} (${resolution.detail})`);
  }

  /** Every audit of the epoch resolved, then ONE commit: marker, forfeits, epoch-audited. Idempotent. */
  private async auditEpoch(sessionId: number, epoch: number): Promise<void> {
    const { store, clock } = this.deps;
    if (await store.isEpochAudited(sessionId, epoch)) return;
    if (sessionId === this.sessionId) {
      for (const [k, c] of this.reservoir) {
        if (c.epoch !== epoch) continue;
        this.reservoir.delete(k);
        // Held since capture; enqueue releases it when the run ends.
        if (!c.sampled) this.enqueue(c, 'reservoir');
      }
    }
    await Promise.all(this.runs.get(epoch) ?? []);
    this.runs.delete(epoch);
    for (const k of [...this.counts.keys()]) if (k.startsWith(`${epoch}/`)) this.counts.delete(k);

    const now = clock.now();
    const contributions = await store.epochContributions(sessionId, epoch);
    let audits = await store.listAudits(sessionId, epoch);
    for (const a of audits.filter((a) => a.outcome === 'pending')) {
      await store.resolveAudit(sessionId, a.round, a.nodeId, { outcome: 'error', relativeError: null, cosine: null, detail: 'not done: the coordinator restarted before this audit finished', resolvedAt: now });
    }
    // A node that delivered in the epoch and has no audit: its chosen update was lost (restart) or not held
    // (queue full). Said so in its ledger, on its last update of the epoch.
    const audited = new Set(audits.map((a) => a.nodeId));
    const lastByNode = new Map<number, (typeof contributions)[number]>();
    for (const c of contributions) if (c.status === 'applied') lastByNode.set(c.nodeId, c);
    const versions = await store.roundModelVersions(sessionId, [...new Set([...lastByNode.values()].map((c) => c.round))]);
    for (const [nodeId, c] of lastByNode) {
      if (audited.has(nodeId)) continue;
      await store.recordAuditSelected({
        sessionId,
        epoch,
        round: c.round,
        nodeId,
        attempt: c.attempt,
        modelVersion: versions.get(c.round) ?? -1,
        shardStart: c.shardStart,
        shardCount: c.shardCount,
        outcome: 'error',
        selectedBy: 'unrecoverable',
        relativeError: null,
        cosine: null,
        tolerance: this.tolerance,
        detail: 'not done: the update chosen for this node was not held (coordinator restart, or the audit queue\'s memory and disk bounds were full)',
        selectedAt: now,
        resolvedAt: now,
      });
    }
    audits = await store.listAudits(sessionId, epoch);
    const forfeited = forfeitedNodes(audits);
    const reasons: Record<number, string> = {};
    const forfeits: ForfeitRecord[] = forfeited.map((nodeId) => {
      const failed = audits.filter((a) => a.nodeId === nodeId && a.outcome === 'fail').map((a) => ({ round: a.round, relativeError: a.relativeError ?? Number.POSITIVE_INFINITY }));
      reasons[nodeId] = forfeitReason(epoch, failed, this.tolerance);
      return { sessionId, epoch, nodeId, reason: reasons[nodeId], at: now };
    });
    const event: EpochAudited = { kind: 'epoch-audited', sessionId, epoch, forfeitedNodeIds: forfeited };
    const records = await store.commitEpochAudit({ sessionId, epoch, audits: audits.length, forfeits, at: now, event });
    const counts = { pass: 0, fail: 0, error: 0 };
    for (const a of audits) if (a.outcome !== 'pending') counts[a.outcome]++;
    const held = this.vault.stats();
    this.deps.log(
      forfeited.length > 0 ? 'warn' : 'info',
      `epoch ${epoch} audited: ${counts.pass} passed, ${counts.fail} failed, ${counts.error} not done; ${forfeited.length} node(s) forfeit the epoch ` +
        `(captures waiting: ${mb(held.memoryBytes)} MB in memory, ${mb(held.diskBytes)} MB in scratch files)`,
    );
    this.deps.report(event, reasons);
    this.deps.deliver(records);
  }

  private auditorFor(sessionId: number): Promise<Auditor | null> {
    if (this.auditor?.sessionId !== sessionId) {
      const config = this.deps.session(sessionId)?.config;
      const previous = this.auditor;
      void previous?.handle.then((a) => a?.close()).catch(() => undefined);
      const handle = config
        ? this.deps.createAuditor(config.model, config.dataset).catch((error) => {
            this.deps.log('error', `audits unavailable: ${error instanceof Error ? error.message : String(error)}`);
            return null;
          })
        : Promise.resolve(null);
      this.auditor = { sessionId, handle };
    }
    return this.auditor.handle;
  }

  /**
   * The session ended: its auditor (a thread holding tfjs and the training set, 60-100 MB) goes once the audits
   * queued so far have run, instead of staying until the next session's first audit. An audit of the session that
   * comes later still runs: auditorFor starts a fresh one.
   */
  private releaseAuditor(sessionId: number): void {
    const held = this.auditor;
    if (held?.sessionId !== sessionId) return;
    // On the audit chain, so it waits for the audits queued before it and any queued after wait for it.
    this.chain = this.chain.catch(() => undefined).then(async () => {
      if (this.auditor !== held) return;
      this.auditor = null;
      const auditor = await held.handle;
      await auditor?.close().catch(() => undefined);
    });
  }

  private async read(held: Held | null): Promise<Float32Array> {
    try {
      if (!held) throw new Error('nothing was kept');
      return await this.vault.read(held);
    } catch (error) {
      throw new Error(`the captured update could not be read back: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** The capture's vectors go back to the vault (once; a capture can be both in the reservoir and on a run). */
  private release(c: Capture): void {
    if (c.released) return;
    c.released = true;
    if (c.update) this.vault.release(c.update);
    if (c.params) this.vault.release(c.params);
  }

  /** What the vault holds (for tests and the memory benchmark's notes). */
  vaultStats() {
    return this.vault.stats();
  }

  private reset(sessionId: number): void {
    this.sessionId = sessionId;
    // Captures not handed to a run are released here; those on a run (sampled ones) when it ends.
    for (const captures of this.uncommitted.values()) for (const c of captures) this.release(c);
    for (const c of this.reservoir.values()) if (!c.sampled) this.release(c);
    this.uncommitted.clear();
    this.counts.clear();
    this.reservoir.clear();
  }

  /** Lets queued audits finish (as 'error' once closed) and stops the auditor. */
  async close(): Promise<void> {
    this.closed = true;
    await this.chain.catch(() => undefined);
    const auditor = await this.auditor?.handle;
    await auditor?.close().catch(() => undefined);
  }
}

/**
 * Why a session's updates cannot be recomputed bit-for-bit, or null when they can. Local steps carry the agent's
 * inner optimizer state across rounds, lossy codecs quantize (and int8/top-k add an error-feedback residual): none of it is
 * in the frame, so a recomputation would differ for an honest node. Such audits are recorded as not done, which
 * never forfeits credit (auditing those modes needs the agent's state in the audit; not built yet).
 */
export function unauditableReason(config: SessionConfig): string | null {
  if (config.localSteps === 'auto' || (typeof config.localSteps === 'number' && config.localSteps > 1)) {
    return 'local-steps updates depend on the agent\'s inner optimizer state and are not audited';
  }
  if (config.codec !== undefined && config.codec !== 'float32') return `updates sent as ${config.codec} are quantized on the agent and are not audited`;
  return null;
}
