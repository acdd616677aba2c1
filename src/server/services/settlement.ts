// Settlement: an outbox consumer that turns each settled epoch's credits into a Merkle root on chain.
// Two steps, so training never waits for the chain and nothing is paid twice:
//  1. plan (on the committed event; idempotent): the epoch's payable credits become amounts and cumulative
//     leaves, written with a fixed contract epoch number `seq` in one transaction, keyed by (session, epoch).
//  2. commit (a loop over pending rows, in seq order, retried with backoff while the chain is unreachable):
//     before sending, the chain's roots[seq] is read; a root already there (a crash after sending, before the
//     row was marked) is taken as committed. The contract itself refuses a second commit of a seq.
import type { OutboxRecord } from '../core/engine/committed';
import type { Clock } from '../core/ports';
import { payableCredits, settlementRequest } from '../core/rewards/payable';
import { planSettlement } from '../core/rewards/plan';
import { amountsForEpoch, type RewardPolicy } from '../core/rewards/policy';
import type { RewardsRepository, SettlementChain, SettlementEntryRecord } from '../core/rewards/ports';
import type { OutboxConsumer } from './outbox';

/** How long one commit transaction is waited for before the loop backs off and looks again. */
const TX_WAIT_MS = 60_000;

export interface SettlementDeps {
  repo: RewardsRepository;
  /** Null when the coordinator runs without a chain (--no-chain): epochs are planned and stay pending. */
  chain: SettlementChain | null;
  clock: Clock;
  policy(sessionId: number): RewardPolicy | Promise<RewardPolicy>;
  log(level: 'info' | 'warn' | 'error', message: string): void;
  /** Retry delays while the chain is unreachable: from minRetryMs doubling to maxRetryMs. */
  minRetryMs?: number;
  maxRetryMs?: number;
}

export class Settlement implements OutboxConsumer {
  readonly name = 'settlement';
  /** The chain's lastEpoch seen at start: new seqs start above it (a contract attached with history). */
  private chainFloor = 0;
  private floorKnown = false;
  private running: Promise<void> | null = null;
  private again = false;
  private retryMs: number;
  private cancelRetry: (() => void) | null = null;
  private closed = false;
  /** Serializes planning: seqs are allocated one at a time. */
  private planning: Promise<unknown> = Promise.resolve();
  /** Why the last commit attempt failed (null after a pass that committed everything pending), for /health. */
  private lastError: string | null = null;

  constructor(private readonly deps: SettlementDeps) {
    this.retryMs = deps.minRetryMs ?? 1000;
  }

  /** Reconciles with the chain (pending rows it already has) and starts committing. Never throws. */
  start(): void {
    this.kick();
  }

  handle(record: OutboxRecord): Promise<void> {
    const request = settlementRequest(record.event);
    if (!request) return Promise.resolve();
    const run = this.planning.then(() => this.plan(request.sessionId, request.epoch, new Set(request.forfeitedNodeIds)));
    this.planning = run.catch(() => undefined);
    return run.then(() => this.kick());
  }

  private async plan(sessionId: number, epoch: number, forfeited: ReadonlySet<number>): Promise<void> {
    const { repo } = this.deps;
    if (await repo.findSettlement(sessionId, epoch)) return;
    const credits = await repo.epochCredits(sessionId, epoch);
    if (credits.length === 0) return;
    const addresses = await repo.payoutAddresses(credits.map((c) => c.nodeId));
    const { payable, unpayable } = payableCredits(credits, forfeited, (id) => addresses.get(id) ?? null);
    const amounts = amountsForEpoch(payable, await this.deps.policy(sessionId));
    const plan = planSettlement(amounts, (id) => addresses.get(id)!, await repo.cumulativeByAddress());
    if (!plan) {
      this.deps.log('info', `session ${sessionId} epoch ${epoch}: nothing payable (${unpayable.map((u) => `node #${u.nodeId}: ${u.reason}`).join(', ')})`);
      return;
    }
    if (!this.floorKnown && this.deps.chain) {
      // Before the first seq: a contract attached with history of its own (another ledger's epochs) must not
      // collide with ours. Unreachable now: the ledger's own numbering, and the commit loop checks roots[seq].
      try {
        this.chainFloor = Math.max(this.chainFloor, (await this.deps.chain.totals()).lastEpoch);
        this.floorKnown = true;
      } catch {
        // left unknown; the commit loop reads it when the chain is back
      }
    }
    const seq = Math.max(await repo.lastSeq(), this.chainFloor) + 1;
    const entries: Omit<SettlementEntryRecord, 'seq' | 'nodeName'>[] = [
      ...plan.paid.map((p) => ({ nodeId: p.nodeId, address: p.address, samples: p.samples, amount: p.amount, cumulative: p.cumulative, reason: null })),
      ...unpayable.map((u) => ({ nodeId: u.nodeId, address: addresses.get(u.nodeId) ?? null, samples: u.samples, amount: 0n, cumulative: 0n, reason: u.reason })),
    ];
    const created = await repo.createSettlement(
      { seq, sessionId, epoch, root: plan.tree.root, total: plan.total, status: 'pending', txHash: null, createdAt: this.deps.clock.now(), committedAt: null },
      entries,
    );
    if (created) this.deps.log('info', `session ${sessionId} epoch ${epoch}: settlement #${seq} planned, ${plan.total} base units to ${plan.paid.length} node(s)`);
  }

  /** Runs the commit loop (again, if it is running now). */
  kick(): void {
    if (this.closed || !this.deps.chain) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.commitPending().finally(() => {
      this.running = null;
      if (this.again && !this.closed) {
        this.again = false;
        this.kick();
      }
    });
  }

  private async commitPending(): Promise<void> {
    const chain = this.deps.chain!;
    try {
      const totals = await chain.totals();
      this.chainFloor = Math.max(this.chainFloor, totals.lastEpoch);
      this.floorKnown = true;
      for (const s of await this.deps.repo.settlements('pending')) {
        if (this.closed) return;
        const onChain = await chain.rootOf(s.seq);
        if (onChain !== null) {
          if (onChain.toLowerCase() !== s.root.toLowerCase()) {
            this.deps.log('error', `settlement #${s.seq}: the chain holds another root (${onChain}) than the ledger (${s.root}); not committing anything more until an operator looks`);
            return;
          }
          await this.deps.repo.markCommitted(s.seq, s.txHash, this.deps.clock.now());
          this.deps.log('info', `settlement #${s.seq} (session ${s.sessionId} epoch ${s.epoch}) was already on chain: marked committed`);
          continue;
        }
        if (s.txHash) {
          // Sent before a crash or a lost connection: wait for that transaction rather than send another.
          const outcome = await chain.waitFor(s.txHash, TX_WAIT_MS);
          if (outcome === 'success') {
            await this.deps.repo.markCommitted(s.seq, s.txHash, this.deps.clock.now());
            this.deps.log('info', `settlement #${s.seq} (session ${s.sessionId} epoch ${s.epoch}): its earlier transaction ${s.txHash} went through`);
            continue;
          }
          if (outcome === 'unknown') throw new Error(`transaction ${s.txHash} for settlement #${s.seq} not mined yet`);
          // Reverted (or dropped): roots[seq] is still empty, so a new commit is safe.
        }
        const txHash = await chain.sendCommit(s.seq, s.root, s.total);
        await this.deps.repo.setSettlementTx(s.seq, txHash);
        const outcome = await chain.waitFor(txHash, TX_WAIT_MS);
        if (outcome !== 'success') throw new Error(`commitEpoch(${s.seq}) ${outcome === 'reverted' ? 'reverted' : 'not mined yet'} (tx ${txHash})`);
        await this.deps.repo.markCommitted(s.seq, txHash, this.deps.clock.now());
        this.deps.log('info', `settlement #${s.seq} (session ${s.sessionId} epoch ${s.epoch}) committed on chain ${chain.info.chainId}: ${s.total} base units, tx ${txHash}`);
      }
      this.retryMs = this.deps.minRetryMs ?? 1000;
      this.lastError = null;
    } catch (error) {
      const message = error instanceof Error ? (error as { shortMessage?: string }).shortMessage ?? error.message : String(error);
      this.lastError = message.slice(0, 300);
      this.deps.log('warn', `settlement: chain not ready (${message.slice(0, 300)}); retrying in ${Math.round(this.retryMs / 1000)} s (training goes on)`);
      const delay = this.retryMs;
      this.retryMs = Math.min(this.deps.maxRetryMs ?? 30_000, this.retryMs * 2);
      this.cancelRetry?.();
      this.cancelRetry = this.deps.clock.setTimeout(() => this.kick(), delay);
    }
  }

  /**
   * For /health and /metrics: settlements by status in the ledger and the chain's answer. The chain is not needed
   * to train (settlement retries), so a chain that does not answer is reported, never fatal.
   */
  async state(): Promise<{ chain: 'none' | 'up' | 'down'; detail: string; committed: number; pending: number; lastEpochOnChain: number | null }> {
    const all = await this.deps.repo.settlements();
    const committed = all.filter((s) => s.status === 'committed').length;
    const pending = all.length - committed;
    const chain = this.deps.chain;
    if (!chain) return { chain: 'none', detail: `no chain configured; ${pending} epoch(s) planned and unsettled`, committed, pending, lastEpochOnChain: null };
    try {
      const totals = await chain.totals();
      const retrying = this.lastError ? `; last commit failed (${this.lastError}), retrying` : '';
      return { chain: 'up', detail: `chain ${chain.info.chainId} at ${chain.info.contractAddress}: ${committed} settled, ${pending} pending${retrying}`, committed, pending, lastEpochOnChain: totals.lastEpoch };
    } catch (error) {
      const message = error instanceof Error ? ((error as { shortMessage?: string }).shortMessage ?? error.message) : String(error);
      return { chain: 'down', detail: `chain ${chain.info.chainId} does not answer (${message.slice(0, 200)}); ${pending} pending, training goes on`, committed, pending, lastEpochOnChain: null };
    }
  }

  /** Resolves once no commit is in flight and nothing is pending, or `timeoutMs` passed (tests, shutdown). */
  async idle(): Promise<void> {
    await this.planning;
    await this.running;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cancelRetry?.();
    await this.planning.catch(() => undefined);
    await this.running?.catch(() => undefined);
    await this.deps.chain?.close();
  }
}
