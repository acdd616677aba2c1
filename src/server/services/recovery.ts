// Picks up a session that was running or paused when the coordinator last stopped, however it stopped.
// The model is rebuilt exactly: the latest checkpoint, then every journaled update the ledger records as
// applied after it, in order. A checkpoint that cannot be read (damaged, missing) is skipped for the one before
// it: the checkpointer keeps the journal back to the oldest checkpoint it retains, so the replay still reaches
// the ledger's version. Which one was used, and why newer ones were skipped, is in `how` and `skipped`. The data cursor comes from the last recorded round, credit from the ledger.
import { RequestError } from '../../protocol/errors';
import { withForfeits } from '../core/audit';
import { creditsFrom, closedEpochOf } from '../core/engine/accounting';
import type { DurableSession, NodeCredit } from '../core/engine/committed';
import { strategyFor } from '../core/engine/strategy';
import type { CheckpointStore, TrainingRepository, UpdateJournal } from '../core/ports';
import type { MetricPoint, SessionSnapshot } from '../core/types';
import type { LoadedModel, ModelStore } from './model-store';

export interface Recovered {
  session: DurableSession;
  snapshot: SessionSnapshot;
  credits: Map<number, NodeCredit>;
  recent: MetricPoint[];
  model: LoadedModel;
  how: string;
  detail: Record<string, number>;
  /** Newer checkpoints that could not be used, with why, newest first. */
  skipped: string[];
}

export interface RecoveryDeps {
  repo: TrainingRepository;
  checkpoints: CheckpointStore;
  journal: UpdateJournal;
  model: ModelStore;
  describeDataset(id: string): Promise<{ trainSize: number }>;
  /** The session's audit forfeits (absent: no audit ledger), put back into the nodes' credit. */
  forfeits?(sessionId: number): Promise<{ nodeId: number; epoch: number }[]>;
}

export type RecoveryResult = { recovered: Recovered } | { failed: SessionSnapshot; message: string } | null;

export async function recoverSession(deps: RecoveryDeps, recentLimit: number): Promise<RecoveryResult> {
  const saved = await deps.repo.findResumableSession();
  if (!saved) return null;
  const config = saved.config;
  const { trainSize } = await deps.describeDataset(config.dataset);
  const paramCount = deps.model.paramCount(config.model);
  const strategy = strategyFor(config);
  // Newest first; one beyond the ledger (it cannot be: the row is written after the round) is not trusted.
  const candidates = (await deps.repo.listCheckpoints(saved.id)).filter((c) => c.modelVersion <= saved.modelVersion).reverse();
  const skipped: string[] = [];
  let checkpoint: (typeof candidates)[number] | null = null;
  let model: LoadedModel | null = null;
  for (const candidate of candidates) {
    try {
      const payload = await deps.checkpoints.read(candidate.path, candidate.sha256);
      if (payload.sessionId !== saved.id || payload.modelVersion !== candidate.modelVersion || payload.params.length !== paramCount) {
        throw new Error(`it holds session ${payload.sessionId} model version ${payload.modelVersion} with ${payload.params.length} parameters, not what its row records`);
      }
      model = { sessionId: saved.id, modelVersion: payload.modelVersion, params: payload.params, optimizer: { slots: payload.optimizerState, step: payload.optimizerStep } };
      checkpoint = candidate;
      break;
    } catch (error) {
      skipped.push(`checkpoint at round ${candidate.round} (model version ${candidate.modelVersion}) is unusable: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (!model) {
    // A session started from another's checkpoint begins from those weights, not from its seed.
    if (config.initFrom) deps.model.preset(config.initFrom, await readCheckpointParams(deps, config.initFrom.sessionId, config.initFrom.round));
    deps.model.init(saved.id, config);
    model = deps.model.model!;
  }
  const fromVersion = model.modelVersion;
  // Entries past the ledger's model version were journaled by a round whose transaction never committed.
  const entries = (await deps.journal.read(saved.id, fromVersion)).filter((e) => e.modelVersion <= saved.modelVersion);
  for (const entry of entries) {
    if (entry.modelVersion !== model.modelVersion + 1) break;
    strategy.applyAggregate(model.optimizer, model.params, entry.update);
    model.modelVersion = entry.modelVersion;
  }
  if (model.modelVersion !== saved.modelVersion) {
    const message = `cannot rebuild model version ${saved.modelVersion} exactly: checkpoint at version ${fromVersion} and the journal reaches only version ${model.modelVersion}`;
    return { failed: saved, message: skipped.length ? `${message} (${skipped.join('; ')})` : message };
  }
  const lastRound = await deps.repo.lastRound(saved.id);
  const cursor = lastRound ? structuredClone(lastRound.cursor) : { epoch: 0, position: 0, pending: [] };
  const base = checkpoint ? `checkpoint at round ${checkpoint.round}` : 'the initial model';
  const how = `${base}${skipped.length ? ` (${skipped.length} newer checkpoint(s) unusable)` : ''} + ${entries.length} journaled update(s)`;
  const session: DurableSession = {
    id: saved.id,
    config,
    trainSize,
    paramCount,
    startedAt: saved.startedAt,
    state: saved.state,
    message: saved.message,
    endedAt: saved.endedAt,
    round: saved.round,
    modelVersion: saved.modelVersion,
    epoch: saved.epoch,
    totalSamples: saved.totalSamples,
    cursor,
    closedEpoch: closedEpochOf(cursor, trainSize),
  };
  const recent = (await deps.repo.listMetrics(saved.id, recentLimit)).sort((a, b) => a.round - b.round);
  return {
    recovered: {
      session,
      snapshot: saved,
      credits: withForfeits(creditsFrom(await deps.repo.listContributions(saved.id)), (await deps.forfeits?.(saved.id)) ?? []),
      recent,
      model,
      how,
      detail: { checkpointRound: checkpoint?.round ?? 0, replayed: entries.length, modelVersion: model.modelVersion, skippedCheckpoints: skipped.length },
      skipped,
    },
  };
}

/** The parameters of one session's checkpoint at one round; throws (NOT_FOUND for the API) when there is none. */
export async function readCheckpointParams(deps: Pick<RecoveryDeps, 'repo' | 'checkpoints'>, sessionId: number, round: number): Promise<Float32Array> {
  const row = (await deps.repo.listCheckpoints(sessionId)).find((c) => c.round === round);
  if (!row) throw new RequestError('NOT_FOUND', `session ${sessionId} has no checkpoint at round ${round}`);
  const payload = await deps.checkpoints.read(row.path, row.sha256);
  return payload.params;
}
