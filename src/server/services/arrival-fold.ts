// Folding updates into the round's running sum as they arrive (mean-type rules), on the runner's behalf.
//
// The engine still sees one "slot" per update: a fold token (a negative id, so it can never be mistaken for an
// aggregator slot). Its protocol with the engine is the slots' own: update-ingested carries the token; a
// release-slots for it during that step is a refusal (norm limit, stale round), and the fold is discarded; a
// token the engine kept is accepted into the sum once the step is done. A refused update therefore never
// reaches the sum. The aggregate effect then asks for the mean of exactly the tokens accepted, and fails
// loudly if the sum holds any other set. Recovery needs nothing from here: a round's aggregate is journaled
// before its commit, and an uncommitted round's updates are lost with the process and trained again.
//
// Two things used to need the updates kept until the close, and get them another way here:
// - outlier scores (each update's distance from the aggregate): the fold keeps a sketch of each update
//   (running-sum.ts), and the distances are estimated from the sketches;
// - audits copy a few sampled updates: the received payload (the socket's own buffer, not a copy) is referenced
//   until the round aggregates, and only the audited ones are copied (slotOf).
import { HyperGpuError } from '../../protocol/errors';
import { checkStats, FRAME_HEADER_BYTES, type FrameHeader, type PayloadStats } from '../../protocol/frame';
import type { EngineEvent } from '../core/engine/events';
import { strategyFor } from '../core/engine/strategy';
import type { AggregationPlan, Aggregator, RunningSum, UpdateSlot } from '../core/ports';
import type { SessionConfig } from '../core/types';

interface RoundSum {
  key: string;
  sum: RunningSum;
  /** Accepted tokens, in accept order (the sum's order for its distances). */
  members: Map<number, number>;
  /** Each accepted token's received payload (a reference), for audits. */
  payloads: Map<number, Uint8Array>;
}

export class ArrivalFolds {
  private current: RoundSum | null = null;
  private pending: number | null = null;
  private pendingPayload: Uint8Array | null = null;
  private nextToken = -1;

  constructor(private readonly aggregator: Aggregator) {}

  /** Updates of a session with this config are folded on arrival when its rule allows and the aggregator can. */
  applies(config: SessionConfig | undefined): boolean {
    return config !== undefined && typeof this.aggregator.openSum === 'function' && strategyFor(config).foldsOnArrival;
  }

  static isToken(id: number): boolean {
    return id < 0;
  }

  /** The ingest effect for a folding session: the engine event that reports the fold, or why it failed. */
  ingest(nodeId: number, header: FrameHeader, bytes: Uint8Array, at: number): EngineEvent {
    try {
      const { token, stats } = this.fold(header, bytes);
      return { type: 'update-ingested', at, nodeId, header, slot: token, stats };
    } catch (error) {
      const code = error instanceof HyperGpuError ? error.code : 'BAD_MESSAGE';
      return { type: 'update-ingest-failed', at, nodeId, header, code, message: error instanceof Error ? error.message : String(error) };
    }
  }

  /**
   * The aggregate effect over folded updates: one scaling pass over the running sum, on this thread, and each
   * update's estimated distance from it (in `tokens` order).
   */
  async aggregate(round: number, tokens: readonly number[], plan: AggregationPlan, scales?: readonly number[], into?: Float32Array): Promise<{ aggregate: Float32Array; distances: number[] }> {
    if (plan.rule !== 'weighted-mean') throw new Error(`round ${round}: its updates were folded on arrival, but the plan is ${plan.rule}`);
    return this.mean(tokens, plan.weights, scales, into);
  }

  /**
   * An accepted update of the current round as a slot-like view, for the audits' capture (which copies the ones
   * it samples). The received payload is read in place when it is 4-byte aligned, copied otherwise.
   */
  slotOf(token: number): UpdateSlot | undefined {
    // The update that closes the round is still pending when the round aggregates (see mean).
    const bytes = token === this.pending ? this.pendingPayload : this.current?.payloads.get(token);
    if (!bytes) return undefined;
    const count = bytes.byteLength >>> 2;
    const view = bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, count) : new Float32Array(bytes.slice().buffer, 0, count);
    return { id: token, view };
  }

  /**
   * Checks the frame's payload and adds it, tentatively, into its round's sum in one pass. Throws the frame's
   * ProtocolError (checksum, NaN/Inf) with the fold already discarded.
   */
  fold(header: FrameHeader, bytes: Uint8Array): { token: number; stats: PayloadStats } {
    // A fold still pending here belongs to an update-ingested step that threw before the engine took it in (the
    // runner settles every step that completes): the engine never accepted it, so it is dropped.
    if (this.pending !== null) {
      this.pending = null;
      this.pendingPayload = null;
      this.current?.sum.discard();
    }
    const key = `${header.sessionId}/${header.round}/${header.attempt}`;
    if (this.current?.key !== key) {
      // A new round (or a new opening of one): whatever the old sum held went with its round.
      this.current?.sum.close();
      this.current = { key, sum: this.aggregator.openSum!(header.paramCount), members: new Map(), payloads: new Map() };
    }
    const { sum } = this.current;
    const payload = bytes.subarray(FRAME_HEADER_BYTES);
    const stats = sum.fold(payload, header.sampleCount);
    try {
      checkStats(header, stats);
    } catch (error) {
      sum.discard();
      throw error;
    }
    const token = this.nextToken--;
    this.pending = token;
    this.pendingPayload = payload;
    return { token, stats };
  }

  /**
   * The engine has stepped the update-ingested event of `token`: if it did not refuse it, it is in. (Or the
   * engine closed the round in that very step and asks for the mean with it: see mean.)
   */
  settle(token: number): void {
    if (this.pending !== token || !this.current) return;
    const { sum, members, payloads } = this.current;
    this.pending = null;
    sum.accept();
    members.set(token, members.size);
    if (this.pendingPayload) payloads.set(token, this.pendingPayload);
    this.pendingPayload = null;
  }

  /** A release-slots entry for a token: a refusal when still pending; otherwise its round is being dropped. */
  release(token: number): void {
    if (this.pending === token) {
      this.pending = null;
      this.pendingPayload = null;
      this.current!.sum.discard();
      return;
    }
    // An accepted update released: its round is being dropped (a kept one would make the sum's set differ
    // from the round's at the close, which mean() refuses).
    this.current?.members.delete(token);
    this.current?.payloads.delete(token);
  }

  /**
   * The weighted mean of exactly these tokens with these weights (their sample counts), and each one's
   * estimated distance from it (in `tokens` order); closes the sum.
   */
  mean(tokens: readonly number[], weights: readonly number[], scales?: readonly number[], into?: Float32Array): { aggregate: Float32Array; distances: number[] } {
    // The update that completes a round is still pending here: the round closes in the step that accepts it.
    if (this.pending !== null && tokens.includes(this.pending)) this.settle(this.pending);
    const current = this.current;
    if (!current) throw new Error(`no running sum holds tokens ${tokens.join(', ')}`);
    const total = weights.reduce((a, w) => a + Math.fround(w), 0);
    const same = tokens.length === current.members.size && tokens.every((t) => current.members.has(t));
    if (!same || total !== current.sum.totalWeight) {
      throw new Error(
        `the running sum holds ${current.members.size} updates of total weight ${current.sum.totalWeight}, ` +
          `the round closed with ${tokens.length} of total weight ${total}: refusing to apply a sum of other updates`,
      );
    }
    // Norm clipping: the few updates over the limit are scaled down in the sum, from their received bytes.
    scales?.forEach((scale, i) => {
      if (scale >= 1) return;
      const token = tokens[i];
      const bytes = current.payloads.get(token);
      if (!bytes) throw new Error(`update ${token} is to be clipped, but its payload is not held`);
      current.sum.rescale(current.members.get(token)!, bytes, scale);
    });
    const aggregate = current.sum.mean(into);
    const byAccept = current.sum.distances();
    const distances = tokens.map((t) => byAccept[current.members.get(t)!]);
    current.sum.close();
    this.current = null;
    return { aggregate, distances };
  }

  close(): void {
    this.current?.sum.close();
    this.current = null;
    this.pending = null;
    this.pendingPayload = null;
  }
}
